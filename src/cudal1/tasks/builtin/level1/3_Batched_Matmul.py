"""Batched matrix product: C[b] = A[b] @ B[b] for a batch of float32 matrices."""

import torch
import torch.nn as nn

BATCH = 64
M = 512
K = 2048
N = 512

SMOKE = {"BATCH": 4, "M": 48, "K": 64, "N": 32}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.bmm(A, B)


def get_inputs():
    A = torch.randn(BATCH, M, K)
    B = torch.randn(BATCH, K, N) * 0.25 - 0.1
    return [A, B]


def get_init_inputs():
    return []
