"""Two-layer GRU over a sequence, returning the outputs of every time step."""

import torch
import torch.nn as nn

BATCH = 32
SEQ_LEN = 128
INPUT_SIZE = 256
HIDDEN_SIZE = 512
NUM_LAYERS = 2

SMOKE = {"BATCH": 2, "SEQ_LEN": 8, "INPUT_SIZE": 12, "HIDDEN_SIZE": 16}


class Model(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return out


def get_inputs():
    return [torch.randn(BATCH, SEQ_LEN, INPUT_SIZE) * 2.0 - 0.5]


def get_init_inputs():
    return [INPUT_SIZE, HIDDEN_SIZE, NUM_LAYERS]
