# target: tests/hacks/tasks/two_output_task.py
# expect-verdict: rejected
# expect-findings: timed-output-mismatch
# expect-one-of: timed-output-mismatch, output-shape-mismatch
"""Fewer outputs when timed: the reference returns (h, gelu(h)); this candidate returns both
during the correctness trials but only h (skipping the GELU) once it believes it is timed.

Its tell: it keeps a weak reference to the previous call's input. A judge that reuses the
previous trial's tensors passes the same object again; a timing loop that keeps the previous
inputs alive and makes fresh ones passes a different, still-alive object. A timed comparison
that zips outputs pairwise sees only the first pair; the structure check on every timed call
(two outputs expected, one returned) must reject it."""

import weakref

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self._previous = None

    def _timed(self, x: torch.Tensor) -> bool:
        before = self._previous() if self._previous is not None else None
        self._previous = weakref.ref(x)
        return before is not None and before is not x

    def forward(self, x: torch.Tensor):
        h = self.fc(x)
        if self._timed(x):
            return (h,)
        return h, torch.nn.functional.gelu(h)
