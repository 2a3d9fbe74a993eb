"""HardTanh activation: clamp every element to [-1, 1]."""

import torch
import torch.nn as nn
import torch.nn.functional as F

ROWS = 16384
COLS = 16384

SMOKE = {"ROWS": 128, "COLS": 192}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardtanh(x, min_val=-1.0, max_val=1.0)


def get_inputs():
    return [torch.randn(ROWS, COLS) * 1.5]


def get_init_inputs():
    return []
