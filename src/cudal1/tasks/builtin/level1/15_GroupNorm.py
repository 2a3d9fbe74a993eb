"""Group normalization of a 4D activation (channels split into groups), with learned affine."""

import torch
import torch.nn as nn

BATCH = 32
CHANNELS = 128
GROUPS = 8
HEIGHT = 256
WIDTH = 256

SMOKE = {"BATCH": 2, "CHANNELS": 16, "GROUPS": 4, "HEIGHT": 16, "WIDTH": 12}


class Model(nn.Module):
    def __init__(self, groups: int, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH) + 0.7]


def get_init_inputs():
    return [GROUPS, CHANNELS]
