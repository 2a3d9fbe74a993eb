"""Linear layer (no bias), add a learned bias vector, then ReLU."""

import torch
import torch.nn as nn

BATCH = 4096
IN_FEATURES = 4096
OUT_FEATURES = 4096

SMOKE = {"BATCH": 64, "IN_FEATURES": 128, "OUT_FEATURES": 96}


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.randn(out_features) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gemm(x)
        x = x + self.bias
        return torch.relu(x)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES) * 2.0 - 0.3]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]
