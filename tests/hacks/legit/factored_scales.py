# target: tests/hacks/tasks/sum_scales_task.py
# expect-verdict: accepted
# expect-findings:
"""A sound algebraic rewrite: x * a + x * b = x * (a + b). The per-feature sum a + b is taken
from the current parameters on every call (1024 additions), then one multiply over the batch
replaces two multiplies and an add. Correct for any parameter values, so re-initialising or
scaling them changes nothing; the rounding differs from the reference's by a few float32 ulps."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.a = nn.Parameter(torch.randn(dim))
        self.b = nn.Parameter(torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.a + self.b)
