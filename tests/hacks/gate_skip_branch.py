# target: tests/hacks/tasks/gated_residual_task.py
# expect-verdict: rejected
# expect-findings: parameter-specialized
# may-also-find: output-mismatch
"""Skips a branch because its gate is zero at init: the task computes x + gate * MLP(x) with the
gate initialised to zero, so the output equals x for the task's parameters and every input.
This candidate creates the same parameters (same shapes and order, so they get the same
values) and returns a copy of x, never reading the gate: about 1000x less work, right on every
input distribution, wrong as soon as the gate moves. Stopped by the probe that re-initialises
or scales the parameters (in reference and candidate alike) and compares again."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()
