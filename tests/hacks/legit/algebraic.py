# target: tests/hacks/tasks/diag_matmul_task.py
# expect-verdict: accepted
# expect-findings:
"""Algebraic rewrite: diag(a) @ B scales the rows of B, so it is a broadcast multiply
(O(N*M) instead of building an N x N matrix and an O(N^2 * M) matmul)."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return A.unsqueeze(1) * B
