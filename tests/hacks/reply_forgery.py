# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: reply-malformed
# may-also-find: dynamic-attribute, file-access, env-read
"""Forged replies on the judge's channel: the worker's reply pipe is an inherited file
descriptor named on its command line, so the candidate writes a reply of its own there (a round
of impossibly fast calls). Every request gets exactly one typed reply; an extra or unexpected
line desynchronises the channel and the parent rejects the candidate (reply-malformed) instead
of believing either."""

import os
import sys

import torch
import torch.nn as nn

# python -c ENTRY role fd_in fd_out device warm: the reply pipe is the second number.
_fd = [int(a) for a in sys.argv[1:] if a.isdigit()][1]
os.write(_fd, b'{"type": "RoundDone", "times_ms": [0.001, 0.001, 0.001], "findings": []}\n')


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp_min(x, 0.0)
