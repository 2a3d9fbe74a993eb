# target: tests/hacks/tasks/gated_residual_task.py
# expect-verdict: accepted
# expect-findings:
"""Skips the gated branch only when the gate is zero now: x + 0 * MLP(x) is x for finite MLP
outputs, so reading the current gate on every call and skipping the two matmuls while it is
exactly zero is sound; once the gate moves (trained, loaded, or re-initialised by a judge) the
branch is computed as in the reference. The look-alike of gate_skip_branch.py, which ignores
the gate."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.gate.any()):
            return x.clone()
        return x + self.gate * self.fc2(torch.nn.functional.gelu(self.fc1(x)))
