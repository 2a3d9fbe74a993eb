# task: level1/5_Diag_Matmul
# expected-tags: algebraic-simplification
"""diag(a) @ B scales row i of B by a[i]: a broadcast multiply, no N x N matrix, no matmul."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return a.unsqueeze(1) * B
