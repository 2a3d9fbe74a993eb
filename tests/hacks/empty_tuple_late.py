# target: tests/hacks/tasks/matmul_task.py
# expect-verdict: rejected
# expect-findings: timed-output-mismatch
# expect-one-of: timed-output-mismatch, output-shape-mismatch
# may-also-find: call-counting
"""Structure collapse on later calls: honest for the first ten calls (the correctness trials
and warm-up), then returns an empty tuple. A timed check that zips the reference's outputs
with the candidate's compares nothing and passes; checking every timed call's complete
structure (the number of outputs, then each one's shape) must reject it."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, A: torch.Tensor, B: torch.Tensor):
        self.calls += 1
        if self.calls > 10:
            return ()
        return torch.matmul(A, B)
