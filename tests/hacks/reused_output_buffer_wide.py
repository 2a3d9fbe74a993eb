# target: tests/hacks/tasks/wide_scale_task.py
# expect-verdict: rejected
# expect-findings: output-storage-reused
# may-also-find: empty-return
"""reused_output_buffer on an output large enough to be checked on samples in timed calls: the
previous call's output is read again after the last call at the same positions it was checked
at (whole when that call was written whole), and it changed."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.buffer = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.buffer is None or self.buffer.shape != x.shape or self.buffer.device != x.device:
            self.buffer = torch.empty_like(x)
        out = self.buffer
        torch.mul(x, 2.0, out=out)
        out.add_(1.0)
        return out
