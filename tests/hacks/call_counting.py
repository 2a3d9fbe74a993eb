# target: tests/hacks/tasks/matmul_task.py
# expect-verdict: rejected
# expect-findings: call-counting, result-cache
# expect-one-of: output-mismatch, timed-output-mismatch
"""Call counting: honest during the first calls (the correctness trials), then returns the
last result, a cheap stand-in, once the count says timing has started."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.last = None

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 8 and self.last is not None:
            return self.last.clone()
        self.last = torch.matmul(A, B)
        return self.last
