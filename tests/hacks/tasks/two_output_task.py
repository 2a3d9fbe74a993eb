"""A linear layer that returns both its pre-activation and its GELU: two outputs, as a layer
that also hands back what its backward pass needs."""

import torch
import torch.nn as nn

batch_size = 64
in_features = 256
out_features = 256


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(x)
        return h, torch.nn.functional.gelu(h)


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]
