# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: input-specialized
"""Distribution specialization: the task's inputs are uniform in [0, 1), where ReLU is the
identity, so the "kernel" is a copy. Wrong for any negative input."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()
