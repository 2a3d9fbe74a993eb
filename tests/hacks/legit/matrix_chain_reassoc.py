# target: tests/hacks/tasks/matrix_chain_task.py
# expect-verdict: accepted
# expect-findings:
"""Matrix-chain reassociation: (A @ B) @ C computed as A @ (B @ C). With A and B 256x256 and C
256x4 that is 2 * 256 * 256 * 4 multiply-adds instead of 256^3 + 256 * 256 * 4 (about 32x
fewer). Exact in real arithmetic; in float32 the rounding differs from the reference's order
but is no larger, so a judge whose tolerance comes from a float64 evaluation must accept it."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        return A @ (B @ C)
