"""Two-layer LSTM over a sequence, then a linear classifier on the last time step."""

import torch
import torch.nn as nn

BATCH = 32
SEQ_LEN = 128
INPUT_SIZE = 256
HIDDEN_SIZE = 512
NUM_LAYERS = 2
NUM_CLASSES = 10

SMOKE = {"BATCH": 2, "SEQ_LEN": 8, "INPUT_SIZE": 16, "HIDDEN_SIZE": 24}


class Model(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int, num_classes: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


def get_inputs():
    return [torch.randn(BATCH, SEQ_LEN, INPUT_SIZE)]


def get_init_inputs():
    return [INPUT_SIZE, HIDDEN_SIZE, NUM_LAYERS, NUM_CLASSES]
