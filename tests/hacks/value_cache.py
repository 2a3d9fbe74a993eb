# target: tests/hacks/tasks/matmul_task.py
# expect-verdict: rejected
# expect-findings: result-cache
# expect-one-of: output-mismatch, timed-output-mismatch
"""Value cache: compute once, then return the stored output on every later call. Honest for
the first call only; a judge that checks only some calls misses it."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.cached = None
        self.shape = None

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        if self.cached is not None and self.shape == (A.shape, B.shape):
            return self.cached
        self.cached = torch.matmul(A, B)
        self.shape = (A.shape, B.shape)
        return self.cached
