# task: level1/24_Sum_Reduction
# expected-tags: custom-cuda-kernel, shared-memory
"""Sum over dim 1 of a (B, D1, D2) tensor: one block per output element, a shared-memory tree reduction."""
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

CUDA_SRC = r"""
#include <torch/extension.h>

__global__ void sum_dim1_kernel(const float* x, float* out, int d1, int d2) {
    __shared__ float partial[256];
    const int b = blockIdx.x / d2, k = blockIdx.x % d2;
    float acc = 0.f;
    for (int i = threadIdx.x; i < d1; i += blockDim.x) acc += x[((long)b * d1 + i) * d2 + k];
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

torch::Tensor sum_dim1(torch::Tensor x) {
    const int b = x.size(0), d1 = x.size(1), d2 = x.size(2);
    auto out = torch::empty({b, 1, d2}, x.options());
    sum_dim1_kernel<<<b * d2, 256>>>(x.data_ptr<float>(), out.data_ptr<float>(), d1, d2);
    return out;
}
"""

_ext = None


def _kernels():
    global _ext
    if _ext is None:
        _ext = load_inline(name="cudal1_sum_smem", cpp_sources="torch::Tensor sum_dim1(torch::Tensor x);",
                           cuda_sources=CUDA_SRC, functions=["sum_dim1"])
    return _ext


class ModelNew(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _kernels().sum_dim1(x.contiguous())
