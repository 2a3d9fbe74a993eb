"""Softmax over 8192 columns at a very high temperature (logits scaled by 1e-3). Every output
is about 1/8192 = 1.2e-4, far below an absolute tolerance of 1e-2 (and near 1e-4); what the
output says lies in deviations of about 1e-7 around that value. The scale is inside the model,
so other input distributions of the same shape give equally small outputs."""

import torch
import torch.nn as nn

batch_size = 16
dim = 8192
logit_scale = 1e-3


class Model(nn.Module):
    def __init__(self, logit_scale: float):
        super().__init__()
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x * self.logit_scale, dim=1)


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [logit_scale]
