# task: level2/1_Gemm_BiasAdd_ReLU
# expected-tags: custom-cpp-kernel, op-fusion
"""The GEMM stays in PyTorch; bias add and ReLU run as one fused C++ loop over its output."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.cpp_extension import load_inline

CPP_SRC = r"""
#include <torch/extension.h>

torch::Tensor bias_relu(torch::Tensor y, torch::Tensor bias) {
    auto out = y.contiguous();
    const int64_t rows = out.size(0), cols = out.size(1);
    float* p = out.data_ptr<float>();
    const float* b = bias.contiguous().data_ptr<float>();
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
            float* row = p + r * cols;
            for (int64_t c = 0; c < cols; ++c) {
                const float v = row[c] + b[c];
                row[c] = v > 0.f ? v : 0.f;
            }
        }
    });
    return out;
}
"""

_ext = None


def _kernels():
    global _ext
    if _ext is None:
        _ext = load_inline(name="cudal1_bias_relu_cpu", cpp_sources=CPP_SRC, functions=["bias_relu"])
    return _ext


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.randn(out_features) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the GEMM output is a fresh tensor, so the fused kernel may write it in place
        return _kernels().bias_relu(F.linear(x, self.gemm.weight), self.bias)
