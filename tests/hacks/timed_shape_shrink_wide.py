# target: tests/hacks/tasks/wide_scale_task.py
# expect-verdict: rejected
# expect-findings: call-counting
# expect-one-of: timed-output-mismatch, output-shape-mismatch
"""Once timing has started, returns one row fewer of the large output (less work), hoping a
sampled check only looks at values: the full shapes travel with every sample and are compared
first."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 12:
            x = x[:-1]
        return x * 2.0 + 1.0
