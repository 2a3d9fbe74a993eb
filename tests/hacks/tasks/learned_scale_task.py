"""tanh(alpha * x) with a learned scalar alpha (a learned-temperature activation)."""

import torch
import torch.nn as nn

batch_size = 64
dim = 1024


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.rand(1) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.alpha * x)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
