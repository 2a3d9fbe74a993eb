"""Inclusive prefix sum (cumulative sum) along the last dimension of a 2D tensor."""

import torch
import torch.nn as nn

ROWS = 32768
COLS = 8192
DIM = 1

SMOKE = {"ROWS": 32, "COLS": 512}


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=self.dim)


def get_inputs():
    return [torch.randn(ROWS, COLS) * 0.5 - 0.05]


def get_init_inputs():
    return [DIM]
