"""Scaled dot-product attention softmax(Q K^T / sqrt(d)) V over batched multi-head tensors."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
HEADS = 16
SEQ_LEN = 1024
HEAD_DIM = 64

SMOKE = {"BATCH": 2, "HEADS": 2, "SEQ_LEN": 64, "HEAD_DIM": 16}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)


def get_inputs():
    q = torch.randn(BATCH, HEADS, SEQ_LEN, HEAD_DIM)
    k = torch.randn(BATCH, HEADS, SEQ_LEN, HEAD_DIM) * 0.8
    v = torch.randn(BATCH, HEADS, SEQ_LEN, HEAD_DIM) - 0.3
    return [q, k, v]


def get_init_inputs():
    return []
