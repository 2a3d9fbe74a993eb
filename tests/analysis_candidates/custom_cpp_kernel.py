# task: level1/21_HardTanh
# expected-tags: custom-cpp-kernel
"""HardTanh as one C++ loop on the CPU."""
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

CPP_SRC = r"""
#include <torch/extension.h>
#include <algorithm>

torch::Tensor hardtanh(torch::Tensor x, double lo, double hi) {
    auto xc = x.contiguous();
    auto y = torch::empty_like(xc);
    const float* src = xc.data_ptr<float>();
    float* dst = y.data_ptr<float>();
    const float l = (float)lo, h = (float)hi;
    const int64_t n = xc.numel();
    for (int64_t i = 0; i < n; ++i) {
        dst[i] = std::min(h, std::max(l, src[i]));
    }
    return y;
}
"""

_ext = None


def _kernels():
    global _ext
    if _ext is None:
        _ext = load_inline(name="cudal1_hardtanh_cpu", cpp_sources=CPP_SRC, functions=["hardtanh"])
    return _ext


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _kernels().hardtanh(x, -1.0, 1.0)
