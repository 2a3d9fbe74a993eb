# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: network-access
# may-also-find: sandbox-denied
# sandbox-dependent: yes
"""Network connection: phone home at import (here to a documentation address, TEST-NET-3,
with a short timeout)."""

import socket

import torch
import torch.nn as nn

try:
    socket.create_connection(("203.0.113.7", 9), timeout=0.2).close()
except OSError:
    pass


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)
