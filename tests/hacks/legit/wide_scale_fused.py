# target: tests/hacks/tasks/wide_scale_task.py
# expect-verdict: accepted
# expect-findings:
"""The large-output task done right in one call (torch.add with alpha):
most of its timed calls are checked on a sample, and it must pass them all."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.add(torch.ones_like(x), x, alpha=2.0)
