"""2D instance normalization: each (sample, channel) plane normalized on its own."""

import torch
import torch.nn as nn

BATCH = 16
CHANNELS = 64
HEIGHT = 512
WIDTH = 512

SMOKE = {"BATCH": 2, "CHANNELS": 4, "HEIGHT": 16, "WIDTH": 24}


class Model(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH) * 0.5 - 2.0]


def get_init_inputs():
    return [CHANNELS]
