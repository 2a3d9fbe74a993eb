"""Switch transforms: each turns its technique off (the tag disappears) and leaves a valid file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cudal1.analysis.ablation import components_from_source, plan_variants, reference_as_candidate, rules_regenerator
from cudal1.analysis.switches import SWITCHES, switch_off
from cudal1.analysis.tags import tag_candidate
from cudal1.tasks import resolve_task

C = Path(__file__).parent / "analysis_candidates"


@pytest.mark.parametrize("name,switch", [
    ("cudnn_benchmark.py", "cudnn-benchmark"),
    ("channels_last.py", "channels-last"),
    ("cuda_graph.py", "cuda-graph"),
    ("torch_compile.py", "torch-compile"),
])
def test_switch_removes_its_tag(name, switch):
    source = (C / name).read_text()
    assert switch in tag_candidate(None, source)
    new, changes = switch_off(source, switch)
    ast.parse(new)
    assert changes and switch not in tag_candidate(None, new)
    assert switch_off(new, switch) is None  # nothing left to turn off


def test_cuda_graph_replay_becomes_the_captured_call():
    new, changes = switch_off((C / "cuda_graph.py").read_text(), "cuda-graph")
    fwd = next(n for n in ast.walk(ast.parse(new)) if isinstance(n, ast.FunctionDef) and n.name == "forward")
    assert ast.unparse(fwd.body[-1]) == "return self._body(A, B)"


def test_lower_precision_switches():
    src = ("import torch\ntorch.backends.cuda.matmul.allow_tf32 = True\ntorch.set_float32_matmul_precision('high')\n"
           "def f(a, b):\n    with torch.autocast('cuda', dtype=torch.bfloat16):\n        return a @ b\n")
    new, changes = switch_off(src, "lower-precision")
    assert len(changes) == 3
    assert "allow_tf32 = False" in new and "'highest'" in new and "enabled=False" in new


def test_plain_candidate_has_no_switches():
    src = (C / "plain.py").read_text()
    assert all(switch_off(src, s.id) is None for s in SWITCHES)


def test_components_from_headers():
    assert components_from_source("# components: simplify, fuse\nimport torch\n") == ("simplify", "fuse")
    doc = '"""x.\n\nComponents, in order: simplify (sound algebraic simplification); compile-default\n(torch.compile(mode="default")).\n"""\n'
    assert components_from_source(doc) == ("simplify", "compile-default")


def test_rules_candidate_variants():
    """An optimizer-composed candidate: one regenerated variant per component; switches that a
    component already removes are not ablated twice."""
    from cudal1.policies.rules import Plan, RulesPolicy

    task = resolve_task("level2/2_Conv2d_ReLU_BiasAdd", size="smoke")
    pol = RulesPolicy()
    source = pol.build(pol.traced(task), Plan(("channels-last", "cudagraph")), "cuda").source
    assert components_from_source(source) == ("channels-last", "cudagraph")
    variants = plan_variants(task, source, ("channels-last", "cudagraph"), rules_regenerator("cuda"))
    assert [(v.technique, v.kind) for v in variants] == [("channels-last", "component"), ("cudagraph", "component")]
    assert "channels-last" not in tag_candidate(task, variants[0].source)
    assert "cuda-graph" not in tag_candidate(task, variants[1].source)
    only = rules_regenerator("cpu")(task, ())
    assert only == reference_as_candidate(task)
