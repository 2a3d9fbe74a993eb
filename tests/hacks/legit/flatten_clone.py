# target: tests/hacks/tasks/flatten_task.py
# expect-verdict: accepted
# expect-findings:
"""Flatten as one reshape and one copy into fresh memory: the same values and the same
independence from the input as the reference (unlike returning the reshape's view)."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1).clone()
