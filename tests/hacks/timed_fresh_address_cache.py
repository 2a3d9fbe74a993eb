# target: tests/hacks/tasks/matmul_task.py
# expect-verdict: rejected
# expect-findings: timed-output-mismatch
# may-also-find: output-storage-reused
"""Returns a shape-keyed cached result once it believes it is timed, told by input addresses.

A judge that reuses the previous trial's input memory (new values at the same addresses, to
catch pointer-keyed caches) hands the trials repeated addresses; a timing loop that keeps the
previous inputs alive while making new ones hands every timed call fresh addresses. The
candidate reads the address through the array interface (not data_ptr, which a static scan
looks for), computes honestly while addresses repeat, and returns the product stored for these
shapes when they do not. Every timed output is stale (and the same tensor each time); the
comparison of every timed call's output must reject it."""

import torch
import torch.nn as nn


def _address(t: torch.Tensor) -> int:
    if t.is_cuda:
        return t.__cuda_array_interface__["data"][0]
    return t.numpy().__array_interface__["data"][0]


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self._last_address = None
        self._by_shape = {}

    def _product(self, key, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        stored = self._by_shape.get(key)
        if stored is None:
            stored = torch.matmul(A, B)
        return stored

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        where = _address(A)
        fresh = self._last_address is not None and where != self._last_address
        self._last_address = where
        key = (tuple(A.shape), tuple(B.shape))
        if fresh:
            return self._product(key, A, B)
        out = torch.matmul(A, B)
        self._by_shape[key] = out
        return out
