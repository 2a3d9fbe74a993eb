"""3D convolution, mean over channels (kept), max over channels (kept), then sigmoid."""

import torch
import torch.nn as nn

BATCH = 16
IN_CHANNELS = 16
OUT_CHANNELS = 64
DEPTH = 16
HEIGHT = 64
WIDTH = 64
KERNEL_SIZE = 3

SMOKE = {"BATCH": 2, "IN_CHANNELS": 3, "OUT_CHANNELS": 8, "DEPTH": 6, "HEIGHT": 10, "WIDTH": 8}


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = torch.mean(x, dim=1, keepdim=True)
        x = torch.amax(x, dim=1, keepdim=True)
        return torch.sigmoid(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, DEPTH, HEIGHT, WIDTH) * 2.0 - 0.5]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, KERNEL_SIZE]
