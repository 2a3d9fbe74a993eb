"""KL divergence between two row-wise probability distributions (batchmean reduction)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
CLASSES = 16384

SMOKE = {"BATCH": 32, "CLASSES": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.kl_div(torch.log(predictions), targets, reduction="batchmean")


def get_inputs():
    predictions = torch.softmax(torch.randn(BATCH, CLASSES) * 2.0, dim=-1)
    targets = torch.softmax(torch.randn(BATCH, CLASSES), dim=-1)
    return [predictions, targets]


def get_init_inputs():
    return []
