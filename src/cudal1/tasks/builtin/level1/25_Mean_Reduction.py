"""Mean over the last dimension of a 3D tensor."""

import torch
import torch.nn as nn

BATCH = 256
DIM1 = 2048
DIM2 = 1024
REDUCE_DIM = 2

SMOKE = {"BATCH": 4, "DIM1": 32, "DIM2": 96}


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mean(x, dim=self.dim)


def get_inputs():
    return [torch.rand(BATCH, DIM1, DIM2) * 6.0 - 3.0]


def get_init_inputs():
    return [REDUCE_DIM]
