"""Transformer encoder layer (post-norm): multi-head self-attention and a ReLU feed-forward network."""

import torch
import torch.nn as nn

BATCH = 32
SEQ_LEN = 256
D_MODEL = 512
NUM_HEADS = 8
FF_DIM = 2048

SMOKE = {"BATCH": 2, "SEQ_LEN": 16, "D_MODEL": 32, "NUM_HEADS": 4, "FF_DIM": 64}


class Model(nn.Module):
    def __init__(self, d_model: int, num_heads: int, ff_dim: int):
        super().__init__()
        # dropout 0: the reference is deterministic although the model stays in training mode
        self.layer = nn.TransformerEncoderLayer(d_model, num_heads, ff_dim, dropout=0.0, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def get_inputs():
    return [torch.randn(BATCH, SEQ_LEN, D_MODEL)]


def get_init_inputs():
    return [D_MODEL, NUM_HEADS, FF_DIM]
