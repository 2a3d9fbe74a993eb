# target: tests/hacks/tasks/matmul_task.py
# expect-verdict: rejected
# expect-findings: timed-output-mismatch
# may-also-find: dynamic-attribute, dynamic-code, gc-introspection, call-counting, result-cache
"""Silencing the harness: every finding the worker would report is dropped from its replies, and
then the program returns a stale result once the correctness trials are over. Nothing the
candidate's process says can save it: the parent compares every timed call's full output
itself (timed-output-mismatch)."""

import torch
import torch.nn as nn

_collector = __import__("g" + "c")

for _obj in getattr(_collector, "get_" + "objects")():
    try:
        _g = getattr(_obj, "__" + "globals__", None)
    except Exception:  # some lazy objects raise on attribute access
        continue
    if isinstance(_g, dict) and "_with_findings" in _g and "Worker" in _g:
        _g["_with_findings"] = lambda reply, findings: reply


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.keep = None

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        self.n += 1
        if self.n > 12 and self.keep is not None:
            return self.keep.clone()
        self.keep = torch.matmul(A, B)
        return self.keep
