# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: empty-return, unwritten-output
# expect-verdict-cpu: incorrect
# expect-findings-cpu: empty-return
"""Reusing freed memory: return an unwritten tensor of the right shape; if the reference's
output was just freed, the allocator hands back the block that still holds it."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(x)
