"""C = A @ B for square float32 matrices."""

import torch
import torch.nn as nn

N = 4096

SMOKE = {"N": 128}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A, B)


def get_inputs():
    A = torch.randn(N, N)
    B = torch.randn(N, N) * 0.5 + 0.1
    return [A, B]


def get_init_inputs():
    return []
