"""A small 2D convolution (3 -> 16 channels, 3x3) on 32x32 images."""

import torch
import torch.nn as nn

batch_size = 4
in_channels = 3
out_channels = 16
kernel_size = 3
height = 32
width = 32


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]
