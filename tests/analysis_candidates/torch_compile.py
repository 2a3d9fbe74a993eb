# task: level1/18_GELU
# expected-tags: torch-compile
"""GELU through torch.compile (Inductor writes one pointwise kernel)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.gelu = torch.compile(F.gelu, dynamic=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gelu(x)
