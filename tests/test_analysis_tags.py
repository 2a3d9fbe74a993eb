"""Technique tags: one candidate per tag (tests/analysis_candidates/), negatives, run evidence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cudal1.analysis.tags import DETECTORS, catalogue, catalogue_markdown, find_tags, launch_count, tag_candidate
from cudal1.judge.verdict import Finding, KernelShare, Verdict
from cudal1.tasks import resolve_task

CANDIDATES = Path(__file__).parent / "analysis_candidates"
FILES = sorted(CANDIDATES.glob("*.py"))
ROOT = Path(__file__).parent.parent


def _header(source: str) -> tuple[str, list[str]]:
    task = re.search(r"^# task: (\S+)", source, re.M).group(1)
    tags = re.search(r"^# expected-tags:(.*)$", source, re.M).group(1)
    return task, sorted(t.strip() for t in tags.split(",") if t.strip())


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_candidate_has_exactly_its_tags(path):
    source = path.read_text()
    task_id, expected = _header(source)
    assert sorted(tag_candidate(resolve_task(task_id), source)) == expected


def test_every_tag_has_a_candidate_a_detector_and_docs():
    ids = catalogue().ids()
    assert set(ids) == set(DETECTORS), "every catalogue entry needs exactly one detector"
    covered = {t for p in FILES for t in _header(p.read_text())[1]}
    assert covered == set(ids), f"tags without a test candidate: {set(ids) - covered}"
    docs = (ROOT / "docs" / "explain.md").read_text()
    for t in catalogue().tags:
        assert f"`{t.id}`" in docs, f"docs/explain.md lacks {t.id}"
    assert catalogue_markdown() in docs, "docs/explain.md's technique section is generated: run python -m cudal1.analysis.docs"


def _task(tid="level1/1_Square_Matmul"):
    return resolve_task(tid)


HEADER = "import torch\nimport torch.nn as nn\n"


@pytest.mark.parametrize("snippet", [
    "torch.backends.cudnn.benchmark = False",
    "x = torch.compile(f, mode='max-autotune-no-cudagraphs')",
    "x = 'torch::Tensor f(torch::Tensor x);'\nfrom torch.utils.cpp_extension import load_inline\nm = load_inline(name='m', cpp_sources=x, cuda_sources=CU)",
    "CODE = '__shared__ float s[32]; // no builder: dead code'",
    "y = x.contiguous()",
])
def test_negatives(snippet):
    tags = tag_candidate(None, HEADER + snippet + "\n")
    assert tags in ([], ["torch-compile"]), tags


def test_graph_modes_of_compile_are_cuda_graphs():
    assert tag_candidate(None, HEADER + "f = torch.compile(g, mode='reduce-overhead')\n") == ["cuda-graph", "torch-compile"]


def test_source_that_does_not_parse_has_no_tags():
    assert tag_candidate(_task(), "def forward(:\n") == []


def _verdict(kernels, ref_kernels=None, findings=()):
    return Verdict("accepted", True, 2.0, 1.0, 0.5, 0.0, tuple(findings), "NVIDIA H100", "2.13",
                   kernels=tuple(KernelShare(n, s, c) for n, s, c in kernels),
                   details={"ref_kernels": [{"name": n, "share": s, "calls": c} for n, s, c in (ref_kernels or [])]})


def test_op_fusion_from_kernel_lists():
    task = resolve_task("level2/1_Gemm_BiasAdd_ReLU")
    plain = (ROOT / "tests/analysis_candidates/plain.py").read_text()
    ref = [("sm90_gemm", 0.8, 3), ("elementwise_add", 0.1, 3), ("relu_kernel", 0.1, 3)]
    fewer = _verdict([("sm90_gemm", 0.9, 3), ("fused_bias_relu", 0.1, 3)], ref)
    same = _verdict([("sm90_gemm", 0.8, 3), ("a", 0.1, 3), ("b", 0.1, 3)], ref)
    assert "op-fusion" in tag_candidate(task, plain, fewer)
    assert "op-fusion" not in tag_candidate(task, plain, same)
    # with both lists, the run decides even against source-level evidence
    fused_src = (CANDIDATES / "op_fusion.py").read_text()
    assert "op-fusion" not in tag_candidate(task, fused_src, same)
    assert launch_count([]) is None and launch_count([{"name": "k", "calls": 0}]) == 1


def test_run_evidence_for_kernels_compile_and_precision():
    task = resolve_task("level1/18_GELU")
    src = (CANDIDATES / "custom_cuda_kernel.py").read_text()
    hits = {h.id: h for h in find_tags(task, src, _verdict([("gelu_kernel(float const*, float*, long)", 1.0, 3)]))}
    assert hits["custom-cuda-kernel"].origin == "source+run"
    plain = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nclass ModelNew(nn.Module):\n    def forward(self, x):\n        return F.gelu(x)\n"
    inductor = _verdict([("triton_poi_fused_gelu_0", 1.0, 3)], [("vectorized_elementwise_kernel", 1.0, 3)])
    assert tag_candidate(task, plain, inductor) == ["torch-compile"]
    lowp = _verdict([("sm90_xmma_gemm_bf16bf16_bf16f32", 1.0, 3)], [("sm90_xmma_gemm_f32f32", 1.0, 3)])
    assert tag_candidate(task, plain, lowp) == ["lower-precision"]
    flagged = _verdict([], findings=[Finding("tf32-enabled", "warn", "x")])
    assert tag_candidate(task, plain, flagged) == ["lower-precision"]


def test_optimizer_style_candidate_reads_only_what_runs():
    """A candidate that embeds the reference Model and subclasses it: Model.forward's ops count
    only while they can still run."""
    task = resolve_task("level1/5_Diag_Matmul")
    embedded = task.source + "\n\nclass ModelNew(Model):\n    def forward(self, a, B):\n        return a.unsqueeze(-1) * B\n"
    assert tag_candidate(task, embedded) == ["algebraic-simplification"]
    inherited = task.source + "\n\nclass ModelNew(Model):\n    pass\n"
    assert tag_candidate(task, inherited) == []
    calls_super = task.source + "\n\nclass ModelNew(Model):\n    def forward(self, a, B):\n        return super().forward(a, B)\n"
    assert tag_candidate(task, calls_super) == []
