"""2D convolution (same padding), batch norm (training statistics), ReLU, then the input added back."""

import torch
import torch.nn as nn

BATCH = 32
CHANNELS = 64
HEIGHT = 128
WIDTH = 128
KERNEL_SIZE = 3

SMOKE = {"BATCH": 2, "CHANNELS": 6, "HEIGHT": 16, "WIDTH": 14}


class Model(nn.Module):
    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = self.bn(y)
        y = torch.relu(y)
        return x + y


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH) * 0.7 - 0.2]


def get_init_inputs():
    return [CHANNELS, KERNEL_SIZE]
