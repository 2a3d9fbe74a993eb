# target: tests/hacks/tasks/relu_task.py
# expect-verdict: incorrect
# expect-findings: inputs-override, output-shape-mismatch
"""Problem shrinking: the candidate ships its own (smaller) sizes and get_inputs, hoping the
judge uses them, and processes only that many rows."""

import torch
import torch.nn as nn

batch_size = 4
dim = 512


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x[:batch_size])


def get_inputs():
    return [torch.rand(batch_size, dim)]


def get_init_inputs():
    return []
