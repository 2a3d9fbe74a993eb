"""Linear layer, batch norm (training statistics), learned scale, then softmax over features."""

import torch
import torch.nn as nn

BATCH = 4096
IN_FEATURES = 4096
OUT_FEATURES = 4096

SMOKE = {"BATCH": 64, "IN_FEATURES": 96, "OUT_FEATURES": 80}


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)
        self.scale = nn.Parameter(torch.randn(1) * 0.5 + 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gemm(x)
        x = self.bn(x)
        x = self.scale * x
        return torch.softmax(x, dim=1)


def get_inputs():
    return [torch.rand(BATCH, IN_FEATURES) * 4.0 - 2.0]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
