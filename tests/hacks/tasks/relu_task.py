"""ReLU over uniform [0, 1) inputs: a degenerate task (ReLU is the identity there), kept small
for CPU runs. Target of most examples in tests/hacks/."""

import torch
import torch.nn as nn

batch_size = 64
dim = 512


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


def get_inputs():
    return [torch.rand(batch_size, dim)]


def get_init_inputs():
    return []
