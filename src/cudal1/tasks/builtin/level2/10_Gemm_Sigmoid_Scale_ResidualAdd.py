"""Linear layer, sigmoid, scaling by a constant, then the linear output added back."""

import torch
import torch.nn as nn

BATCH = 8192
IN_FEATURES = 2048
OUT_FEATURES = 4096
SCALE = 2.5

SMOKE = {"BATCH": 64, "IN_FEATURES": 64, "OUT_FEATURES": 96}


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int, scale: float):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gemm(x)
        y = torch.sigmoid(x) * self.scale
        return x + y


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES) * 2.0]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES, SCALE]
