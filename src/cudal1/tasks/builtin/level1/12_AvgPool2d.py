"""2D average pooling, kernel 3, stride 1, padding 1 (zero padding counted in the average)."""

import torch
import torch.nn as nn

BATCH = 16
CHANNELS = 64
HEIGHT = 512
WIDTH = 512
KERNEL_SIZE = 3
STRIDE = 1
PADDING = 1

SMOKE = {"BATCH": 2, "CHANNELS": 4, "HEIGHT": 24, "WIDTH": 32}


class Model(nn.Module):
    def __init__(self, kernel_size: int, stride: int, padding: int):
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def get_inputs():
    return [torch.rand(BATCH, CHANNELS, HEIGHT, WIDTH) * 4.0 - 1.0]


def get_init_inputs():
    return [KERNEL_SIZE, STRIDE, PADDING]
