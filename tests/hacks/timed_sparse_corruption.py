# target: tests/hacks/tasks/wide_scale_task.py
# expect-verdict: rejected
# expect-findings: call-counting
# expect-one-of: output-mismatch, timed-output-mismatch
"""Once timing has started, every 500th value of the large output is left wrong (one in 500:
a candidate that skips a sliver of its work, or a kernel with a rare race). A sample of 65536
positions holds about 131 of them in every sampled call."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = x * 2.0 + 1.0
        if self.calls > 12:
            out.view(-1)[::500] = 0.0
        return out
