"""A gated residual MLP block, x + gate * MLP(x), with the scalar gate initialised to zero (as
in ReZero and zero-initialised LayerScale): at init the output equals x, but the gate is a
trained parameter and the branch counts as soon as it moves."""

import torch
import torch.nn as nn

batch_size = 64
dim = 256
hidden = 1024


class Model(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gate * self.fc2(torch.nn.functional.gelu(self.fc1(x)))


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [dim, hidden]
