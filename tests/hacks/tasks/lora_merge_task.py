"""Merge a LoRA adapter into its base weight: W + B @ (s[:, None] * A), with the per-rank
scales s as the input. B starts at zero (the usual LoRA initialisation), so at init the output
equals the base weight W; after training it does not."""

import torch
import torch.nn as nn

out_features = 256
in_features = 256
rank = 8


class Model(nn.Module):
    def __init__(self, out_features: int, in_features: int, rank: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.lora_a = nn.Parameter(torch.randn(rank, in_features) / rank ** 0.5)
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.weight + self.lora_b @ (s.unsqueeze(1) * self.lora_a)


def get_inputs():
    return [torch.rand(rank)]


def get_init_inputs():
    return [out_features, in_features, rank]
