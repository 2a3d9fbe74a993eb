# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: dispatch-override
# may-also-find: pointer-keyed-cache, torch-function-override, aten-override, output-mismatch, timed-output-mismatch, untimed-work, unwritten-output, nonfinite-output
"""A process-wide dispatch mode entered at import: every aten call anyone makes (the judge's
harness included) passes through the candidate's code, which finishes a deferred ReLU when the
harness copies the output out. Caught inside the process (a dispatch mode is active outside
forward) and by the parent's comparison."""

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

_pending = {}


class _Finisher(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.detach.default and args and args[0].data_ptr() in _pending:
            torch.clamp_min(_pending.pop(args[0].data_ptr()), 0.0, out=out)
        return out


_Finisher().__enter__()


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        _pending[out.data_ptr()] = x
        return out
