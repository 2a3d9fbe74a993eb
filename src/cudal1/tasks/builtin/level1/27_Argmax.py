"""Index of the maximum over the last dimension of a 3D tensor (int64 output)."""

import torch
import torch.nn as nn

BATCH = 64
DIM1 = 8192
DIM2 = 1024
REDUCE_DIM = 2

SMOKE = {"BATCH": 4, "DIM1": 40, "DIM2": 64}


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.argmax(x, dim=self.dim)


def get_inputs():
    return [torch.randn(BATCH, DIM1, DIM2) * 2.0 - 3.0]


def get_init_inputs():
    return [REDUCE_DIM]
