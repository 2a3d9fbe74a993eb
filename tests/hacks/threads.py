# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: threads, leftover-threads
# may-also-find: output-mismatch, timed-output-mismatch
"""Background thread: forward returns an output buffer at once and a timer thread fills it 50 ms
later, after the caller's timer has stopped."""

import threading

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        threading.Timer(0.05, lambda: torch.relu(x, out=out)).start()
        return out
