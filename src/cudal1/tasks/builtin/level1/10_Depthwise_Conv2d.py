"""Depthwise 2D convolution (one 3x3 filter per channel, groups = channels), padding 1."""

import torch
import torch.nn as nn

BATCH = 16
CHANNELS = 256
HEIGHT = 256
WIDTH = 256
KERNEL_SIZE = 3

SMOKE = {"BATCH": 2, "CHANNELS": 8, "HEIGHT": 24, "WIDTH": 20}


class Model(nn.Module):
    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH) * 2.0]


def get_init_inputs():
    return [CHANNELS, KERNEL_SIZE]
