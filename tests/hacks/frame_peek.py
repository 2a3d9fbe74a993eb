# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: frame-introspection
# may-also-find: output-mismatch
"""Frame introspection: walk up the caller's frames looking for a tensor that already holds the
expected output."""

import sys

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frame = sys._getframe(1)
        while frame is not None:
            for value in frame.f_locals.values():
                if isinstance(value, torch.Tensor) and value.shape == x.shape and value is not x:
                    if bool((value >= 0).all()):
                        return value.clone()
            frame = frame.f_back
        return torch.relu(x)
