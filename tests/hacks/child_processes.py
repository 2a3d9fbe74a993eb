# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: child-process, leftover-processes
# sandbox-dependent: yes
"""Runaway child processes: start a process that outlives the call (it could do work out of
band or hold the GPU after the judge is done)."""

import subprocess
import sys

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.procs = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.procs:
            self.procs.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]))
        return torch.relu(x)
