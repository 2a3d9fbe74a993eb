"""Linear layer, layer norm over features, GELU, then scaling by a constant."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 4096
IN_FEATURES = 4096
OUT_FEATURES = 4096
SCALE = 1.7

SMOKE = {"BATCH": 32, "IN_FEATURES": 96, "OUT_FEATURES": 128}


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int, scale: float):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features)
        self.norm = nn.LayerNorm(out_features)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gemm(x)
        x = self.norm(x)
        x = F.gelu(x)
        return x * self.scale


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES) + 1.0]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES, SCALE]
