# target: tests/hacks/tasks/tiny_softmax_task.py
# expect-verdict: incorrect
# expect-findings: output-mismatch
"""A constant output: softmax over 8192 columns at temperature 1000 is 1/8192 give or take
about 1e-7, so this candidate returns the constant 1/N without reading the logits. Its error
(under 1e-6) passes atol=1e-2 and even the 1e-4 check, on every input distribution, because
the scale is inside the model. The output carries none of the information the reference's
does: a judge that derives the tolerance from a float64 evaluation of the reference (float32
rounding here is ~1e-11, the output's own variation ~1e-7) must call it wrong."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, logit_scale: float):
        super().__init__()
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, 1.0 / x.shape[1])
