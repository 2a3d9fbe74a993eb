"""Cross-entropy loss (mean over the batch) of logits against int64 class targets."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32768
NUM_CLASSES = 8192

SMOKE = {"BATCH": 64, "NUM_CLASSES": 100}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets)


def get_inputs():
    logits = torch.randn(BATCH, NUM_CLASSES) * 3.0
    targets = torch.randint(0, NUM_CLASSES, (BATCH,), dtype=torch.int64)
    return [logits, targets]


def get_init_inputs():
    return []
