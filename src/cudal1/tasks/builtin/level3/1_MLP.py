"""Multi-layer perceptron: stacked linear layers with ReLU between them, linear output layer."""

import torch
import torch.nn as nn

BATCH = 64
INPUT_SIZE = 4096
HIDDEN_SIZES = [4096, 2048, 1024]
OUTPUT_SIZE = 1000

SMOKE = {"BATCH": 4, "INPUT_SIZE": 64, "HIDDEN_SIZES": [48, 32], "OUTPUT_SIZE": 10}


class Model(nn.Module):
    def __init__(self, input_size: int, hidden_sizes: list, output_size: int):
        super().__init__()
        layers = []
        width = input_size
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, output_size))
        self.network = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def get_inputs():
    return [torch.randn(BATCH, INPUT_SIZE)]


def get_init_inputs():
    return [INPUT_SIZE, list(HIDDEN_SIZES), OUTPUT_SIZE]
