# task: level1/21_HardTanh
# expected-tags: custom-cuda-kernel, vectorized-access
"""HardTanh with 128-bit loads and stores (four floats per thread)."""
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

CUDA_SRC = r"""
#include <torch/extension.h>

__device__ __forceinline__ float clampf(float v) { return fminf(1.f, fmaxf(-1.f, v)); }

__global__ void hardtanh_vec4_kernel(const float4* x, float4* y, long n4) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n4) {
        float4 v = x[i];
        y[i] = make_float4(clampf(v.x), clampf(v.y), clampf(v.z), clampf(v.w));
    }
}

torch::Tensor hardtanh(torch::Tensor x) {
    auto y = torch::empty_like(x);
    long n4 = x.numel() / 4;  // the task's sizes are multiples of 4
    hardtanh_vec4_kernel<<<(n4 + 255) / 256, 256>>>(
        reinterpret_cast<const float4*>(x.data_ptr<float>()), reinterpret_cast<float4*>(y.data_ptr<float>()), n4);
    return y;
}
"""

_ext = None


def _kernels():
    global _ext
    if _ext is None:
        _ext = load_inline(name="cudal1_hardtanh_vec4", cpp_sources="torch::Tensor hardtanh(torch::Tensor x);",
                           cuda_sources=CUDA_SRC, functions=["hardtanh"])
    return _ext


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _kernels().hardtanh(x.contiguous())
