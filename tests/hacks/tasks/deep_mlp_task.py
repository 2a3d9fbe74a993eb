"""A deep stack of Linear + tanh layers on a small input: the forward costs tens of milliseconds
on one CPU thread while making its input costs well under one, so work moved out of the timed
region stands far above the judge's clock resolution."""

import torch
import torch.nn as nn

batch = 128
width = 1024
depth = 16


class Model(nn.Module):
    def __init__(self, width: int, depth: int):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x


def get_inputs():
    return [torch.randn(batch, width)]


def get_init_inputs():
    return [width, depth]
