# target: tests/hacks/tasks/lora_merge_task.py
# expect-verdict: accepted
# expect-findings:
"""LoRA merge as one fused addmm: W + B @ (s[:, None] * A) in a single BLAS call that writes a
fresh output. Reads every parameter on every call, so it stays right after the adapter is
trained or re-initialised: the look-alike of parameter_as_output.py."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, out_features: int, in_features: int, rank: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.lora_a = nn.Parameter(torch.randn(rank, in_features) / rank ** 0.5)
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.weight, self.lora_b, s.unsqueeze(1) * self.lora_a)
