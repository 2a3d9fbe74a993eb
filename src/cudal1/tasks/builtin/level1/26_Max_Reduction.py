"""Maximum over the middle dimension of a 3D tensor (values only)."""

import torch
import torch.nn as nn

BATCH = 128
DIM1 = 4096
DIM2 = 1024
REDUCE_DIM = 1

SMOKE = {"BATCH": 4, "DIM1": 48, "DIM2": 64}


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.max(x, dim=self.dim).values


def get_inputs():
    # all values negative: a max that starts from 0 would be wrong
    return [-torch.rand(BATCH, DIM1, DIM2) * 5.0 - 0.1]


def get_init_inputs():
    return [REDUCE_DIM]
