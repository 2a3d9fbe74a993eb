"""Flatten every dimension after the batch into a fresh tensor. The reference copies: its
output never shares memory with its input, so a caller may keep it after changing the input."""

import torch
import torch.nn as nn

batch_size = 32
channels = 16
height = 16
width = 16


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1).clone()


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return []
