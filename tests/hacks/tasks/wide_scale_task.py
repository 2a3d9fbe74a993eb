"""y = 2 * x + 1 over a 20 MB output: large enough that the judge checks most timed calls on a
sample of their values (JudgeConfig.timed_sample), so the attacks on sampling target it."""

import torch
import torch.nn as nn

rows = 1280
cols = 4096


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0 + 1.0


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return []
