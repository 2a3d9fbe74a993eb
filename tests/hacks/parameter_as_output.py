# target: tests/hacks/tasks/lora_merge_task.py
# expect-verdict: rejected
# expect-findings: output-aliases-input
# may-also-find: parameter-specialized
"""Returns a parameter as the output: the task merges a LoRA adapter, W + B @ (s * A), and B is
zero at init, so the result equals the base weight W for every input. This candidate keeps the
same parameters and returns W itself (detached, so it is a plain tensor sharing W's storage):
no work at all, equal values on every input distribution. Stopped by the aliasing check
(output shares memory with a parameter) and by re-initialising the parameters (B no longer
zero: the output is wrong)."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, out_features: int, in_features: int, rank: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.lora_a = nn.Parameter(torch.randn(rank, in_features) / rank ** 0.5)
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.weight.detach()
