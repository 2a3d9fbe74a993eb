# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: side-stream
# may-also-find: untimed-work
"""Side stream: the work runs on another CUDA stream that an event timer on the default stream
does not wait for (CUDA-L1's most common hack). On a CPU the stream is skipped."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.stream = torch.cuda.Stream() if torch.cuda.is_available() else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stream is None or not x.is_cuda:
            return torch.relu(x)
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            out = torch.relu(x)
        return out  # no join: the caller's stream does not wait for the side stream
