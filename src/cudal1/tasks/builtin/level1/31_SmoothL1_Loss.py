"""Smooth L1 (Huber-like, beta 1) loss between predictions and targets, mean over all elements."""

import torch
import torch.nn as nn
import torch.nn.functional as F

ROWS = 12288
COLS = 16384
BETA = 1.0

SMOKE = {"ROWS": 48, "COLS": 320}


class Model(nn.Module):
    def __init__(self, beta: float):
        super().__init__()
        self.beta = beta

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(predictions, targets, beta=self.beta)


def get_inputs():
    # differences fall on both sides of beta: both branches of the loss are used
    predictions = torch.randn(ROWS, COLS) * 1.5
    targets = torch.rand(ROWS, COLS) * 2.0 - 1.0
    return [predictions, targets]


def get_init_inputs():
    return [BETA]
