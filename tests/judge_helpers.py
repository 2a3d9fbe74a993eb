"""Small tasks and a quick judge for the judge's tests."""

from __future__ import annotations

import textwrap

from cudal1.judge import JudgeConfig, evaluate
from cudal1.tasks.contract import Task, source_hash

RELU_TASK = """
import torch, torch.nn as nn
N = 256
class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0
def get_inputs():
    return [torch.randn(N, N) * 3.0]
def get_init_inputs():
    return []
"""

# Inputs are non-negative: ReLU is the identity on them, but not on other values.
POSITIVE_RELU_TASK = """
import torch, torch.nn as nn
N = 256
class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x)
def get_inputs():
    return [torch.rand(N, N)]
def get_init_inputs():
    return []
"""

LINEAR_TASK = """
import torch, torch.nn as nn
B, I, O = 64, 128, 96
class Model(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.lin = nn.Linear(i, o)
    def forward(self, x):
        return torch.tanh(self.lin(x))
def get_inputs():
    return [torch.randn(B, I)]
def get_init_inputs():
    return [I, O]
"""

DROPOUT_TASK = """
import torch, torch.nn as nn
N = 256
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)
    def forward(self, x):
        return self.drop(x) + 1.0
def get_inputs():
    return [torch.randn(N, N)]
def get_init_inputs():
    return []
"""


def make_task(source: str, name: str = "Test", level: int = 1) -> Task:
    source = textwrap.dedent(source)
    return Task(id=f"level{level}/1_{name}", level=level, name=name, source=source, source_hash=source_hash(source))


def judge(task_source: str, candidate: str, cache: str, level: int = 1, **overrides):
    config = JudgeConfig.quick(cache_dir=cache, **overrides)
    return evaluate(make_task(task_source, level=level), textwrap.dedent(candidate), device="cpu", config=config)
