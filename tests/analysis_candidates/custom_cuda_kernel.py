# task: level1/18_GELU
# expected-tags: custom-cuda-kernel
"""GELU (erf form) in a hand-written CUDA kernel, one thread per element."""
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

CUDA_SRC = r"""
#include <torch/extension.h>

__global__ void gelu_kernel(const float* x, float* y, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678f));
    }
}

torch::Tensor gelu(torch::Tensor x) {
    auto y = torch::empty_like(x);
    long n = x.numel();
    gelu_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""

CPP_SRC = "torch::Tensor gelu(torch::Tensor x);"

_ext = None


def _kernels():
    global _ext
    if _ext is None:
        _ext = load_inline(name="cudal1_gelu", cpp_sources=CPP_SRC, cuda_sources=CUDA_SRC, functions=["gelu"])
    return _ext


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _kernels().gelu(x.contiguous())
