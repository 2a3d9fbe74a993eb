"""C = A @ B for a tall-by-wide product of rectangular float32 matrices (M x K times K x N)."""

import torch
import torch.nn as nn

M = 2048
K = 8192
N = 4096

SMOKE = {"M": 96, "K": 160, "N": 64}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A, B)


def get_inputs():
    A = torch.randn(M, K) * 0.5
    B = torch.rand(K, N) * 2.0 - 1.0
    return [A, B]


def get_init_inputs():
    return []
