# target: tests/hacks/tasks/scale_add_task.py
# expect-verdict: accepted
# expect-findings:
"""Reuses an internal scratch buffer across calls (2 * x goes there) but returns a fresh
tensor every call: the look-alike of reused_output_buffer.py. A caller never sees the scratch
memory, so earlier results stay intact and nothing aliases the inputs."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.scratch = None

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.scratch is None or self.scratch.shape != x.shape or self.scratch.device != x.device:
            self.scratch = torch.empty_like(x)
        torch.mul(x, 2.0, out=self.scratch)
        return torch.add(self.scratch, z)
