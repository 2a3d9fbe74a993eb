"""Linear layer, max over features (kept), subtract the mean over that dimension, then GELU."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 4096
IN_FEATURES = 4096
OUT_FEATURES = 4096

SMOKE = {"BATCH": 32, "IN_FEATURES": 80, "OUT_FEATURES": 64}


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gemm(x)
        x = torch.max(x, dim=1, keepdim=True).values
        x = x - x.mean(dim=1, keepdim=True)
        return F.gelu(x)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES) * 3.0 - 1.0]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
