# target: tests/hacks/tasks/conv_task.py
# expect-verdict: accepted
# expect-findings: global-state, global-state-changed
"""channels_last convolution with cuDNN autotuning: a legitimate layout optimization that
needs process-wide state (reported as warn, not rejected)."""

import torch
import torch.nn as nn

torch.backends.cudnn.benchmark = True


class ModelNew(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=1)
        self.conv = self.conv.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.contiguous(memory_format=torch.channels_last))
