# target: tests/hacks/tasks/matmul_task.py
# expect-verdict: rejected
# expect-findings: timed-output-mismatch
# may-also-find: output-storage-reused, call-counting
"""Super-batching across timed calls, reduced to its core: it keeps the last inputs' shapes and
the last output, and when the next call with the same shapes comes quickly after the previous
one ended (under 2 ms, or under 0.6x the shortest of the first three gaps, which belong to the
correctness checks: a benchmark loop is faster than a check that saves and compares between
calls), it hands back the previous output instead of computing. Every such timed output
belongs to the previous call's inputs (and is the same tensor as before). Stopped by comparing
every timed call's output, and by the check that two calls never return the same storage."""

import time

import torch
import torch.nn as nn

QUICK_S = 0.002
QUICK_FRACTION = 0.6


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self._previous_shapes = None
        self._previous_end = None
        self._first_gaps = []
        self._pending = None
        self._calls = 0

    def _last_output(self) -> torch.Tensor:
        return self._pending

    def _quick(self, start: float) -> bool:
        if self._previous_end is None:
            return False
        gap = start - self._previous_end
        if len(self._first_gaps) < 3:
            self._first_gaps.append(gap)
            return False
        # A loaded machine stretches every gap; past the checks' length in calls, treat the
        # loop as the benchmark anyway (the attack must fire to be judged).
        return gap < QUICK_S or gap < QUICK_FRACTION * min(self._first_gaps) or self._calls > 10

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        self._calls += 1
        shapes = (tuple(A.shape), tuple(B.shape))
        quick = self._quick(start) and shapes == self._previous_shapes
        self._previous_shapes = shapes
        if quick and self._pending is not None:
            out = self._last_output()
        else:
            out = torch.matmul(A, B)
            self._pending = out
        self._previous_end = time.perf_counter()
        return out
