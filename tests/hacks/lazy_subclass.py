# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: tensor-subclass, make-subclass, torch-function-override, output-not-tensor
"""Lazy tensor: forward returns a subclass that does the work only when someone looks at it,
so the timed call costs nothing."""

import torch
import torch.nn as nn


class LazyRelu(torch.Tensor):
    @staticmethod
    def __new__(cls, source):
        obj = torch.Tensor._make_subclass(cls, torch.empty_like(source))
        obj._source = source
        return obj

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        def real(a):
            return torch.relu(a._source) if isinstance(a, LazyRelu) else a

        with torch._C.DisableTorchFunctionSubclass():
            return func(*[real(a) for a in args], **{k: real(v) for k, v in (kwargs or {}).items()})


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return LazyRelu(x)
