# target: tests/hacks/tasks/relu_task.py
# expect-verdict: rejected
# expect-findings: side-stream-cuda
# may-also-find: untimed-work
# requires: cuda
"""Side stream in native code: the extension creates its own stream and launches there."""

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_src = "torch::Tensor relu_side(torch::Tensor x);"

cuda_src = r"""
#include <torch/extension.h>
#include <cuda_runtime.h>

__global__ void relu_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

torch::Tensor relu_side(torch::Tensor x) {
    auto y = torch::empty_like(x);
    int n = x.numel();
    static cudaStream_t side = nullptr;
    if (!side) cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking);
    relu_kernel<<<(n + 255) / 256, 256, 0, side>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;  // returned before the side stream has finished
}
"""

ext = load_inline(name="relu_side", cpp_sources=cpp_src, cuda_sources=cuda_src, functions=["relu_side"])


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ext.relu_side(x)
