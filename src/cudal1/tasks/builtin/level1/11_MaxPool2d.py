"""2D max pooling, kernel 3, stride 2, padding 1."""

import torch
import torch.nn as nn

BATCH = 16
CHANNELS = 96
HEIGHT = 512
WIDTH = 512
KERNEL_SIZE = 3
STRIDE = 2
PADDING = 1

SMOKE = {"BATCH": 2, "CHANNELS": 4, "HEIGHT": 32, "WIDTH": 28}


class Model(nn.Module):
    def __init__(self, kernel_size: int, stride: int, padding: int):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def get_inputs():
    # negative values everywhere, so that the padding (which max pooling ignores) matters
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH) - 1.0]


def get_init_inputs():
    return [KERNEL_SIZE, STRIDE, PADDING]
