# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: aten-override
# may-also-find: input-specialized, output-mismatch
"""Operator override: replace aten::relu for the whole process, so the reference runs the
candidate's (here: identity) version and the comparison compares the candidate with itself."""

import torch
import torch.nn as nn

_lib = torch.library.Library("aten", "IMPL")
_lib.impl("relu", lambda x: x.clone(), "CPU")


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)
