# target: tests/hacks/tasks/relu_task.py
# expect-verdict: accepted
# expect-findings:
# requires: cpu
"""A C++ CPU extension with OpenMP, built with load_inline.

Nothing here should trip the catalogue, even though this docstring says torch.cuda.Stream(),
data_ptr(), cudaStreamCreate, os.environ and open() -- strings and comments are not code.
"""

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

# A comment that mentions torch.cuda.Stream(), time.sleep(1) and subprocess.run is not code.
cpp_src = r"""
#include <torch/extension.h>
#include <omp.h>

// cudaStreamCreate(&s) and fopen("x") in a comment are not code either.
/* std::thread t; getenv("HOME"); */
torch::Tensor relu_omp(torch::Tensor x) {
    TORCH_CHECK(x.is_contiguous(), "expected contiguous input (not a cudaStreamCreate or fopen call)");
    auto y = torch::empty_like(x);
    const float* in = x.data_ptr<float>();
    float* out = y.data_ptr<float>();
    const int64_t n = x.numel();
    #pragma omp parallel for
    for (int64_t i = 0; i < n; ++i) {
        out[i] = in[i] > 0.f ? in[i] : 0.f;
    }
    return y;
}
"""

ext = load_inline(
    name="relu_omp",
    cpp_sources=cpp_src,
    functions=["relu_omp"],
    extra_cflags=["-O3", "-fopenmp"],
    extra_ldflags=["-fopenmp"],
)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ext.relu_omp(x.contiguous())
