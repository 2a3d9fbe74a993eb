# target: tests/hacks/tasks/scale_add_task.py
# expect-verdict: rejected
# expect-findings: input-mutated
"""Input mutation: compute in place in the caller's input and return it (no allocation, one
pass less; the caller's data is destroyed)."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return x.mul_(2.0).add_(z)
