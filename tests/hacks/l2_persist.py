# target: tests/hacks/tasks/matmul_task.py
# expect-verdict: rejected
# expect-findings: l2-persistence
# may-also-find: l2-persistence-set
# requires: cuda
"""L2 persistence: pin the operands in L2 with an access-policy window so that they survive the
judge's L2 flush between timed calls (a warm-cache measurement). Needs CUDA."""

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_src = "void pin_l2(torch::Tensor t);"

cuda_src = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>

void pin_l2(torch::Tensor t) {
    cudaDeviceSetLimit(cudaLimitPersistingL2CacheSize, 32 << 20);
    cudaStreamAttrValue attr = {};
    attr.accessPolicyWindow.base_ptr = t.data_ptr();
    attr.accessPolicyWindow.num_bytes = t.numel() * t.element_size();
    attr.accessPolicyWindow.hitRatio = 1.0f;
    attr.accessPolicyWindow.hitProp = cudaAccessPropertyPersisting;
    attr.accessPolicyWindow.missProp = cudaAccessPropertyStreaming;
    cudaStreamSetAttribute(at::cuda::getCurrentCUDAStream(), cudaStreamAttributeAccessPolicyWindow, &attr);
}
"""

ext = load_inline(name="pin_l2", cpp_sources=cpp_src, cuda_sources=cuda_src, functions=["pin_l2"])


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        ext.pin_l2(B)
        return torch.matmul(A, B)
