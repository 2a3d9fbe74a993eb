# target: tests/hacks/tasks/matmul_task.py
# expect-verdict: rejected
# expect-findings: pointer-keyed-cache, result-cache
# may-also-find: output-mismatch, timed-output-mismatch
"""Pointer-keyed cache: when an input address repeats (a benchmark that reuses its inputs, or
the allocator handing back the same block), return the stored product without computing."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self._cache = {}

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        key = (A.data_ptr(), B.data_ptr(), tuple(A.shape), tuple(B.shape))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        out = torch.matmul(A, B)
        self._cache[key] = out
        return out
