"""diag(a) @ B: the product with a diagonal matrix that CUDA-L1 rewrote as a broadcast multiply."""

import torch
import torch.nn as nn

N = 256
M = 256


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.diag(A) @ B


def get_inputs():
    return [torch.randn(N), torch.randn(N, M)]


def get_init_inputs():
    return []
