"""MobileNetV2 inverted residual block: 1x1 expand, 3x3 depthwise, 1x1 project, ReLU6, residual."""

import torch
import torch.nn as nn

BATCH = 32
CHANNELS = 32
EXPAND_RATIO = 6
HEIGHT = 56
WIDTH = 56

SMOKE = {"BATCH": 2, "CHANNELS": 4, "EXPAND_RATIO": 2, "HEIGHT": 12, "WIDTH": 12}


class Model(nn.Module):
    def __init__(self, channels: int, expand_ratio: int):
        super().__init__()
        hidden = channels * expand_ratio
        self.block = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH) * 1.5]


def get_init_inputs():
    return [CHANNELS, EXPAND_RATIO]
