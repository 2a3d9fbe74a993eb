"""Frobenius-norm normalisation, x / ||x||_F over the whole tensor (KernelBench level 1 has
one). With a million elements every output is about 1e-3 and the largest about 5e-3, all
below atol=1e-2: an all-zero output passes an absolute tolerance of 1e-2."""

import torch
import torch.nn as nn

batch_size = 16
features = 16
dim1 = 64
dim2 = 64


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.norm(x, p="fro")


def get_inputs():
    return [torch.randn(batch_size, features, dim1, dim2)]


def get_init_inputs():
    return []
