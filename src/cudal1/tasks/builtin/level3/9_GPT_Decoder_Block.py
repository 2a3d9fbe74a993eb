"""GPT-style decoder block (pre-norm): causal multi-head self-attention and a GELU MLP, residuals."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
SEQ_LEN = 512
D_MODEL = 768
NUM_HEADS = 12

SMOKE = {"BATCH": 2, "SEQ_LEN": 16, "D_MODEL": 32, "NUM_HEADS": 4}


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, max_len: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.register_buffer("mask", torch.tril(torch.ones(max_len, max_len)).view(1, 1, max_len, max_len))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q = q.view(b, t, self.num_heads, c // self.num_heads).transpose(1, 2)
        k = k.view(b, t, self.num_heads, c // self.num_heads).transpose(1, 2)
        v = v.view(b, t, self.num_heads, c // self.num_heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (k.size(-1) ** -0.5)
        att = att.masked_fill(self.mask[:, :, :t, :t] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, c)
        return self.proj(y)


class Model(nn.Module):
    def __init__(self, d_model: int, num_heads: int, max_len: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, num_heads, max_len)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(approximate="tanh"), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


def get_inputs():
    return [torch.randn(BATCH, SEQ_LEN, D_MODEL)]


def get_init_inputs():
    return [D_MODEL, NUM_HEADS, SEQ_LEN]
