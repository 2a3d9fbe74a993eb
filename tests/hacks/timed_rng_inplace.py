# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: output-aliases-input
# may-also-find: input-mutated, call-counting, timed-output-mismatch
"""Computes ReLU in place in its input and returns the input once it believes it is timed.
It first tries the global random state as its tell (a judge that seeds the forward call with
the same seed it drew the inputs from lets the candidate regenerate the inputs from
torch.initial_seed(); cudal1 seeds the forward with a seed of its own, so that tell is closed)
and falls back to counting calls. On this task's
inputs, uniform in [0, 1), relu_ changes no value, so comparing inputs before and after the
call sees nothing: only the check that the output does not share memory with an input stops
it (the timed outputs are the caller's input tensors)."""

import torch
import torch.nn as nn


def _inputs_from_current_seed(x: torch.Tensor) -> bool:
    g = torch.Generator(device=x.device).manual_seed(torch.initial_seed())
    # On the CPU the first values of a draw do not depend on its size; on CUDA draw the shape.
    shape = (min(16, x.numel()),) if x.device.type == "cpu" else x.shape
    drawn = torch.rand(shape, generator=g, device=x.device)
    return bool(torch.equal(drawn.reshape(-1)[:16], x.reshape(-1)[:16]))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.n = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.n += 1
        if _inputs_from_current_seed(x) or self.n > 10:
            return torch.relu_(x)
        return torch.relu(x)
