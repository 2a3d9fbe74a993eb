"""Two learned per-feature scales applied to the same input and summed: x * a + x * b."""

import torch
import torch.nn as nn

batch_size = 128
dim = 1024


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.a = nn.Parameter(torch.randn(dim))
        self.b = nn.Parameter(torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.a + x * self.b


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [dim]
