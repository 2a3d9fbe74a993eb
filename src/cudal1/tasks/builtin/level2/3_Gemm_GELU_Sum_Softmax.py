"""Linear layer, GELU, sum over the features (kept as a dimension), then softmax over features."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 4096
IN_FEATURES = 4096
OUT_FEATURES = 4096

SMOKE = {"BATCH": 48, "IN_FEATURES": 96, "OUT_FEATURES": 64}


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gemm(x)
        x = F.gelu(x)
        x = torch.sum(x, dim=1, keepdim=True)
        return torch.softmax(x, dim=1)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES) * 1.5]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
