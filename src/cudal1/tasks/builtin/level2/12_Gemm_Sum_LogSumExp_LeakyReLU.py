"""Linear layer, sum over features (kept), log-sum-exp over that dimension, then leaky ReLU."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 4096
IN_FEATURES = 4096
OUT_FEATURES = 4096

SMOKE = {"BATCH": 48, "IN_FEATURES": 64, "OUT_FEATURES": 80}


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gemm(x)
        x = torch.sum(x, dim=1, keepdim=True)
        x = torch.logsumexp(x, dim=1, keepdim=True)
        return F.leaky_relu(x, negative_slope=0.01)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES) * 2.0 - 0.5]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
