# target: tests/hacks/tasks/relu_task.py
# expect-verdict: accepted
# expect-findings: lower-precision, strict-tolerance-fails
"""Precision lowering: compute in float16 and cast back. Always inside the 1e-2 tolerance (the
error is a rounding of the input, 2.4e-4 relative), always outside 1e-4, and half the bytes
of a float32 kernel. The judge accepts it with warn findings (reported in a separate table;
JudgeConfig.allow_lower_precision decides whether it counts)."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x.half()).float()
