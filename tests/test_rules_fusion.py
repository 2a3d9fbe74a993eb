"""Generated kernels: detection (fast), CPU build and numerics (slow, one compile), CUDA
source compile check with nvcc (slow)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import textwrap

import pytest
import torch
from rules_fixtures import assert_close, make_task, run_pair, scaled

from cudal1.policies.rules import RulesPolicy
from cudal1.policies.rules.analysis import trace_task
from cudal1.policies.rules.fusion import fuse
from cudal1.policies.rules.policy import Plan

os.environ.setdefault("OMP_NUM_THREADS", "1")

ALL_KERNELS = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(16, 32)
        self.bias = nn.Parameter(torch.randn(32))
        self.norm = nn.LayerNorm(32)
        self.conv = nn.Conv2d(3, 8, 3)
        self.cb = nn.Parameter(torch.randn(8, 1, 1))
        self.lin2 = nn.Linear(16, 12)

    def forward(self, x, img):
        y = F.gelu(self.linear(x) + self.bias) * 2.0
        y = self.norm(y)
        s = torch.softmax(y, dim=-1)
        l = torch.log_softmax(y, dim=-1)
        z = torch.clamp(torch.relu(self.conv(img) * self.cb) - 0.5, min=-1.0, max=1.0)
        h = self.lin2(x)
        h = h * torch.sigmoid(h) + h  # swish plus a residual of the product itself
        h = torch.tanh(F.leaky_relu(h, 0.2)) / 3.0
        return s.sum(dim=-1, keepdim=True), l.mean(dim=-1), z, h
""", "[torch.randn(4, 16), torch.randn(2, 3, 10, 10)]", name="AllKernels")

EXPECTED = {
    "row_layer_norm", "row_softmax", "row_log_softmax", "row_sum", "row_mean",
    "epilogue",  # three of them
}


def test_detects_epilogues_and_row_reductions():
    f = fuse(trace_task(ALL_KERNELS), "cpu")
    names = [k.name for k in f.kernels]
    assert sum(n.startswith("epilogue") for n in names) == 3
    assert {n.rsplit("_", 1)[0] for n in names if n.startswith("row")} == EXPECTED - {"epilogue"}
    docs = " ".join(f.rewrites)
    assert "linear output -> add -> gelu -> mul" in docs
    assert "conv output -> mul -> relu -> sub -> clamp" in docs
    assert "linear output -> sigmoid -> mul -> add -> leaky_relu -> tanh -> truediv" in docs


def test_no_fusion_where_a_value_escapes():
    task = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        y = self.lin(x)
        z = torch.relu(y)
        return z, y.sum()
""", "[torch.randn(4, 8)]", name="Escapes")
    assert fuse(trace_task(task), "cpu") is None


def _matches_on_cpu(task, scale: float, atol: float) -> str:
    """Build the fuse candidate for the CPU and compare it with the reference on the task's
    inputs, scaled ones, and ones with +-inf and NaN planted. Returns the candidate source."""
    p = RulesPolicy().build(trace_task(task), Plan(("fuse",)), "cpu")
    for fn in (None, scaled(scale), scaled(1.0, special=True)):
        refs, news = run_pair(task, p.source, fn)
        for r, n in zip(refs, news):
            assert_close(r, n, atol)
    return p.source


@pytest.mark.slow
def test_cpu_kernels_match_the_reference():
    """One C++/OpenMP build (cached by torch afterwards) covering every generator."""
    source = _matches_on_cpu(ALL_KERNELS, 5.0, 2e-5)
    assert "load_inline" in source and "#pragma omp parallel for" in source


# Declarations of the CUDA-side torch APIs the kernels use: this machine's toolkit lacks the
# cuBLAS/cuSPARSE/cuSOLVER headers that torch's CUDA headers include.
_SHIM = textwrap.dedent("""
    #pragma once
    #include <cuda_runtime.h>
    namespace at { namespace cuda {
    cudaDeviceProp* getCurrentDeviceProperties();
    struct StreamShim { operator cudaStream_t() const; };
    StreamShim getCurrentCUDAStream();
    } }
    namespace c10 { namespace cuda { struct CUDAGuard { explicit CUDAGuard(c10::Device device); }; } }
    #define C10_CUDA_KERNEL_LAUNCH_CHECK() ((void)0)
""")


def _nvcc_compile(src: str, tmp_path) -> subprocess.CompletedProcess:
    import torch.utils.cpp_extension as ce

    src = src.replace("#include <ATen/cuda/CUDAContext.h>", '#include "shim.h"').replace("#include <c10/cuda/CUDAGuard.h>\n", "")
    (tmp_path / "shim.h").write_text(_SHIM)
    (tmp_path / "k.cu").write_text(src)
    inc = [a for p in ce.include_paths() for a in ("-I", p)] + ["-I", sysconfig.get_paths()["include"], "-I", str(tmp_path)]
    return subprocess.run(["nvcc", "-c", str(tmp_path / "k.cu"), "-o", str(tmp_path / "k.o"), "-std=c++20", "-O3",
                           "-arch=sm_90", "-DTORCH_EXTENSION_NAME=k", *inc], capture_output=True, text=True, check=False)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")
def test_cuda_kernels_compile_with_nvcc(tmp_path):
    f = fuse(trace_task(ALL_KERNELS), "cuda")
    _, src = f.kernel_sources()
    assert "float4" in src and "multiProcessorCount" in src and "getCurrentCUDAStream" in src
    assert "use_fast_math" not in f.extension_block().replace("no --use_fast_math", "")
    r = _nvcc_compile(src, tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]


def _matches_on_cuda(task):
    p = RulesPolicy().build(trace_task(task), Plan(("fuse",)), "cuda")
    ns = {}
    exec(compile(p.source, "c", "exec"), ns)  # noqa: S102 - our own generated candidate
    from cudal1.tasks import exec_task_module

    mod = exec_task_module(task.source)
    torch.manual_seed(0)
    ref = mod.Model().cuda()
    torch.manual_seed(0)
    new = ns["ModelNew"]().cuda()
    inputs = [x.cuda() * 3 for x in mod.get_inputs()]
    with torch.no_grad():
        for r, n in zip(ref(*inputs), new(*inputs)):
            assert torch.allclose(r, n, atol=1e-5, rtol=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_kernels_match_the_reference():
    _matches_on_cuda(ALL_KERNELS)

RMS_NORMS = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.RMSNorm([6, 10], eps=1e-6)

    def forward(self, img, seq):
        a = img / torch.sqrt(torch.mean(img ** 2, dim=1, keepdim=True) + 1e-5)  # channels of NCHW
        b = seq * torch.rsqrt(seq.pow(2).mean(-1, keepdim=True) + 1e-6)  # the last dim
        c = self.norm(seq)  # module with a weight, over the last two dims
        d = F.rms_norm(seq, (10,))  # eps=None: float32 machine epsilon
        return a, b, c, d
""", "[torch.randn(2, 8, 5, 7), torch.randn(3, 6, 10)]", name="RmsNorms")


def test_rms_norms_are_detected_written_out_or_as_modules():
    f = fuse(trace_task(RMS_NORMS), "cpu")
    assert [k.name for k in f.kernels] == ["rms_norm_0", "rms_norm_1", "rms_norm_2", "rms_norm_3"]
    assert [(k.dim_start, k.dim_end) for k in f.kernels] == [(1, 2), (2, 3), (1, 3), (2, 3)]
    # a squared value that is used elsewhere stays as written
    shared = make_task("""
class Model(nn.Module):
    def forward(self, x):
        sq = x * x
        return x / torch.sqrt(sq.mean(dim=1, keepdim=True) + 1e-5), sq
""", "[torch.randn(2, 8, 5)]", name="RmsShared")
    f = fuse(trace_task(shared), "cpu")
    assert f is None or not any(k.name.startswith("rms_norm") for k in f.kernels)


@pytest.mark.slow
def test_rms_norm_cpu_kernels_match_the_reference():
    _matches_on_cpu(RMS_NORMS, 50.0, 1e-5)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")
def test_rms_norm_cuda_kernels_compile_with_nvcc(tmp_path):
    _, src = fuse(trace_task(RMS_NORMS), "cuda").kernel_sources()
    assert "_strided<<<" in src and "_rows<<<" in src
    r = _nvcc_compile(src, tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_rms_norm_cuda_kernels_match_the_reference():
    _matches_on_cuda(RMS_NORMS)
