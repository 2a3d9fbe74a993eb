# task: level1/26_Max_Reduction
# expected-tags: custom-cuda-kernel, warp-primitives
"""Max over dim 1: one warp per output element, reduced with shuffles (no shared memory)."""
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

CUDA_SRC = r"""
#include <torch/extension.h>

__global__ void max_dim1_kernel(const float* x, float* out, int d1, int d2, int outputs) {
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (warp >= outputs) return;
    const int b = warp / d2, k = warp % d2;
    float m = -INFINITY;
    for (int i = lane; i < d1; i += 32) m = fmaxf(m, x[((long)b * d1 + i) * d2 + k]);
    for (int offset = 16; offset > 0; offset /= 2) m = fmaxf(m, __shfl_down_sync(0xffffffff, m, offset));
    if (lane == 0) out[warp] = m;
}

torch::Tensor max_dim1(torch::Tensor x) {
    const int b = x.size(0), d1 = x.size(1), d2 = x.size(2);
    auto out = torch::empty({b, d2}, x.options());
    const int outputs = b * d2;
    max_dim1_kernel<<<(outputs * 32 + 255) / 256, 256>>>(x.data_ptr<float>(), out.data_ptr<float>(), d1, d2, outputs);
    return out;
}
"""

_ext = None


def _kernels():
    global _ext
    if _ext is None:
        _ext = load_inline(name="cudal1_max_warp", cpp_sources="torch::Tensor max_dim1(torch::Tensor x);",
                           cuda_sources=CUDA_SRC, functions=["max_dim1"])
    return _ext


class ModelNew(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _kernels().max_dim1(x.contiguous())
