"""A matrix chain evaluated left to right, (A @ B) @ C, with a thin C: the other order,
A @ (B @ C), needs 64x fewer multiply-adds (a sound reassociation, not an approximation)."""

import torch
import torch.nn as nn

N = 256
P = 4


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        return (A @ B) @ C


def get_inputs():
    return [torch.randn(N, N), torch.randn(N, N), torch.randn(N, P)]


def get_init_inputs():
    return []
