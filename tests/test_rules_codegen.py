"""Candidate files: embedding the reference, forward signatures, every plan's source."""

from __future__ import annotations

import ast
import os

import pytest
import torch
from rules_fixtures import make_task, run_pair

from cudal1.policies import Context
from cudal1.policies.rules import PRIOR, RulesPolicy
from cudal1.policies.rules.analysis import embeddable_model_source
from cudal1.policies.rules.codegen import forward_params
from cudal1.policies.rules.policy import Plan
from cudal1.tasks import resolve_task

os.environ.setdefault("OMP_NUM_THREADS", "1")


def test_embedded_source_drops_the_harness_and_keeps_used_constants():
    src = '''import torch
import torch.nn as nn

N = 64
SCALE = 2.0
UNUSED = 3
SMOKE = {"N": 8}


def helper(x):
    return x * SCALE


class Model(nn.Module):
    def forward(self, x):
        return helper(x)


def get_inputs():
    return [torch.randn(N)]


def get_init_inputs():
    return []
'''
    out = embeddable_model_source(src)
    assert "def get_inputs" not in out and "SMOKE" not in out and "UNUSED" not in out and "N = 64" not in out
    assert "SCALE = 2.0" in out and "def helper" in out and "class Model" in out
    ast.parse(out)


def test_forward_params_drop_annotations():
    src = "class Model:\n    def forward(self, x: 'torch.Tensor', y: int = 3, *rest, k=1) -> int:\n        pass\n"
    params, call = forward_params(src)
    assert params == "x, y=3, *rest, k=1"
    assert call == "x, y, *rest, k=k"


@pytest.mark.parametrize("device", ["cpu", "cuda"], ids=["for-cpu", "for-gpu"])
def test_every_plan_gives_a_parseable_self_contained_candidate(device):
    policy = RulesPolicy(cpu_compile=True)
    task = resolve_task("level2/6_Gemm_Max_SubtractMean_GELU", size="smoke")
    ctx = Context(device=device, allow_lower_precision=True, budget=100)
    proposals = policy.propose(task, ctx)
    assert proposals, "some plan applies"
    names = [p.strategy for p in proposals]
    assert names[0] == "simplify"  # algebra first when a rewrite applies (prior order)
    assert len(set(names)) == len(names)
    for p in proposals:
        tree = ast.parse(p.source)
        classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
        assert classes[:1] == ["Model"] and "ModelNew" in classes
        assert "get_inputs" not in p.source
        assert p.components == tuple(p.strategy.split("+"))
        assert p.lower_precision == any(c in ("tf32", "autocast-bf16") for c in p.components)
    if device == "cpu":
        assert not any(c in n for n in names for c in ("cudagraph", "tf32", "reduce-overhead"))


def test_lower_precision_only_when_allowed():
    policy = RulesPolicy()
    task = resolve_task("level1/1_Square_Matmul", size="smoke")
    strict = policy.propose(task, Context(device="cuda", budget=100))
    assert not any(p.lower_precision for p in strict)
    loose = policy.propose(task, Context(device="cuda", budget=100, allow_lower_precision=True))
    assert any(p.lower_precision for p in loose)


def test_channels_last_wrapper_runs_on_cpu_and_matches():
    task = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))
""", "[torch.randn(2, 3, 12, 12)]", name="Conv")
    policy = RulesPolicy()
    p = policy.build(policy.traced(task), Plan(("channels-last",)), "cpu")
    assert "channels_last" in p.source and "cudnn.benchmark = True" in p.source
    ref, new = run_pair(task, p.source)
    assert torch.allclose(ref, new, atol=1e-5)


def test_cudagraph_candidate_runs_eagerly_off_gpu_and_clones_outputs():
    policy = RulesPolicy()
    task = resolve_task("level2/1_Gemm_BiasAdd_ReLU", size="smoke")
    p = policy.build(policy.traced(task), Plan(("cudagraph",)), "cuda")
    src = p.source
    assert "torch.cuda.graph(graph)" in src and "_clone_outputs(self._static_output)" in src
    assert "warmup.wait_stream(torch.cuda.current_stream())" in src
    ref, new = run_pair(task, src)  # CPU tensors: the guard runs the forward eagerly
    assert torch.allclose(ref, new)


def test_prior_lists_every_plan_once():
    assert len(PRIOR) == len(set(PRIOR))
