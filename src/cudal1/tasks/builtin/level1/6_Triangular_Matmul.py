"""C = tril(A) @ tril(B): the product of the lower-triangular parts of two square matrices."""

import torch
import torch.nn as nn

N = 4096

SMOKE = {"N": 128}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.tril(A), torch.tril(B))


def get_inputs():
    A = torch.randn(N, N)
    B = torch.rand(N, N) * 2.0 - 1.0
    return [A, B]


def get_init_inputs():
    return []
