"""2D batch normalization in training mode (batch statistics), with learned scale and shift."""

import torch
import torch.nn as nn

BATCH = 16
CHANNELS = 64
HEIGHT = 512
WIDTH = 512

SMOKE = {"BATCH": 4, "CHANNELS": 6, "HEIGHT": 16, "WIDTH": 20}


class Model(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH) * 2.0 - 0.5]


def get_init_inputs():
    return [CHANNELS]
