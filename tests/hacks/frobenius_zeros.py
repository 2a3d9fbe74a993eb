# target: tests/hacks/tasks/frobenius_task.py
# expect-verdict: incorrect
# expect-findings: output-mismatch
# may-also-find: strict-tolerance-fails
"""An all-zero output for Frobenius-norm normalisation: with a million elements every output
is about 1e-3 (at most about 5e-3, whatever the input's scale, since the norm divides it out),
so zeros pass atol=1e-2 on every input distribution. Stopped only by a tolerance set from the
float64 reference's magnitude (the degenerate-output check)."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)
