# target: tests/hacks/tasks/matmul_task.py
# expect-verdict: accepted
# expect-findings: global-state, global-state-changed
"""Global state: pin torch to one thread and switch cuDNN autotuning on at import. In a judge
that times the reference in the same process this slows the reference down (a bigger
"speedup"); cudal1 times the reference in a clean process and only reports the change."""

import torch
import torch.nn as nn

torch.set_num_threads(1)
torch.backends.cudnn.benchmark = True


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A, B)
