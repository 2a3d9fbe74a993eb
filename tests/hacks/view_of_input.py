# target: tests/hacks/tasks/flatten_task.py
# expect-verdict: rejected
# expect-findings: output-aliases-input
"""Returns a view of its input: torch.flatten of a contiguous tensor is a view, so no bytes
move and the "kernel" costs nothing. The values equal the reference's on every call, but the
reference returns fresh memory, and this output changes whenever the caller writes into its
input. Only the aliasing check (output storage overlapping an input's) can stop it."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1)
