# target: tests/hacks/tasks/learned_scale_task.py
# expect-verdict: rejected
# expect-findings: parameter-specialized
# may-also-find: output-mismatch
"""Bakes a parameter's init-time value into the code: it creates alpha like the reference
(same seed, same value), reads it once as a Python float and multiplies by that constant from
then on (a scalar kernel argument instead of a tensor read). Right on every input, wrong for
any other alpha: a model whose parameters are trained or loaded afterwards gets stale results.
Stopped by the probe that re-initialises or scales the parameters and compares again."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.rand(1) + 0.5)
        self._alpha_value = float(self.alpha.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x * self._alpha_value)
