"""EfficientNet MBConv block: 1x1 expand, strided 5x5 depthwise, squeeze-and-excite, 1x1 project (SiLU)."""

import torch
import torch.nn as nn

BATCH = 32
IN_CHANNELS = 40
OUT_CHANNELS = 80
EXPAND_RATIO = 6
KERNEL_SIZE = 5
STRIDE = 2
HEIGHT = 56
WIDTH = 56
SE_RATIO = 0.25

SMOKE = {"BATCH": 2, "IN_CHANNELS": 4, "OUT_CHANNELS": 8, "EXPAND_RATIO": 2, "HEIGHT": 12, "WIDTH": 12}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, expand_ratio: int, kernel_size: int, stride: int,
                 se_ratio: float):
        super().__init__()
        hidden = in_channels * expand_ratio
        squeezed = max(1, int(in_channels * se_ratio))
        self.expand = nn.Sequential(nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU())
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size, stride=stride, padding=kernel_size // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.SiLU(),
        )
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(hidden, squeezed, 1),
            nn.SiLU(),
            nn.Conv2d(squeezed, hidden, 1),
            nn.Sigmoid(),
        )
        self.project = nn.Sequential(nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(x)
        x = self.depthwise(x)
        x = x * self.se(x)
        return self.project(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH) + 0.3]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, EXPAND_RATIO, KERNEL_SIZE, STRIDE, SE_RATIO]
