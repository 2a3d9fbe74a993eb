# target: tests/hacks/tasks/tiny_softmax_task.py
# expect-verdict: incorrect
# expect-findings: output-mismatch
# may-also-find: strict-tolerance-fails
"""An all-zero output (KernelBench issue 165): every value of this softmax is about 1.2e-4, so
zeros pass atol=1e-2 on every input distribution and fail only the 1e-4 check (a warning in a
judge that reports it and accepts). A judge that sets the tolerance from the float64
reference's own magnitude must reject it: every value is 100% wrong."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, logit_scale: float):
        super().__init__()
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)
