# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: aten-override
# may-also-find: input-specialized, output-mismatch
"""torch.library registration under a namespace computed at run time: the namespace string
"aten" is decoded from hex, so a check for ``Library("aten", ...)`` never fires, yet this
replaces aten::relu's CPU kernel for every module in the process (the judge's and the
reference's included). The replacement computes the right values, so the candidate passes every
comparison; only the scan sees that it rewired a built-in operator."""

import torch
import torch.nn as nn

_NS = bytes.fromhex("6174656e").decode()
_lib = torch.library.Library(_NS, "IMPL")


def _relu_kernel(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp_min(x, 0.0)


_lib.impl("relu", _relu_kernel, "CPU")


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)
