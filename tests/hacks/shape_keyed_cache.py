# target: tests/hacks/tasks/matmul_task.py
# expect-verdict: rejected
# expect-findings: timed-output-mismatch
# may-also-find: output-storage-reused
"""Shape-keyed result cache, as seen against gpu-mode's reference kernels: it counts how often
each input shape has come, computes honestly for the first ten calls of a shape (the
correctness trials and warm-up), then returns the product it stored for that shape. The count
lives in a dict keyed by shape, not in an obvious `self.calls += 1`, and the stored result is
read through a helper, so neither the call-counting nor the result-cache pattern matches.
Every timed output is stale; comparing every timed call's output must reject it."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self._seen = {}
        self._stored = {}

    def _stored_product(self, key) -> torch.Tensor:
        return self._stored[key]

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        key = (tuple(A.shape), tuple(B.shape), A.dtype, A.device)
        self._seen[key] = self._seen.get(key, 0) + 1
        if self._seen[key] > 10 and key in self._stored:
            return self._stored_product(key)
        out = torch.matmul(A, B)
        self._stored[key] = out
        return out
