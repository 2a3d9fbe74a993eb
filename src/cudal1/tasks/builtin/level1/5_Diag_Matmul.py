"""C = diag(a) @ B: a diagonal matrix built from a vector, multiplied with a dense matrix."""

import torch
import torch.nn as nn

N = 4096
M = 4096

SMOKE = {"N": 128, "M": 96}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.diag(a) @ B


def get_inputs():
    a = torch.randn(N) * 3.0
    B = torch.randn(N, M) - 0.5
    return [a, B]


def get_init_inputs():
    return []
