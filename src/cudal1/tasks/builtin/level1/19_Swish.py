"""Swish activation x * sigmoid(x) applied elementwise."""

import torch
import torch.nn as nn

ROWS = 16384
COLS = 12288

SMOKE = {"ROWS": 96, "COLS": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def get_inputs():
    return [torch.randn(ROWS, COLS) * 2.0 - 1.0]


def get_init_inputs():
    return []
