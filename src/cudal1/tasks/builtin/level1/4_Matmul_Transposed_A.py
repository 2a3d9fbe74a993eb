"""C = A.T @ B where A is given as K x M (the first operand is transposed)."""

import torch
import torch.nn as nn

M = 4096
K = 4096
N = 4096

SMOKE = {"M": 80, "K": 112, "N": 64}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A.T, B)


def get_inputs():
    A = torch.randn(K, M) * 2.0 + 0.3
    B = torch.randn(K, N)
    return [A, B]


def get_init_inputs():
    return []
