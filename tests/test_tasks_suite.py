"""The built-in suite: its shape, its smoke sizes, and the algebraic shortcuts it claims."""

from __future__ import annotations

import ast
import re

import pytest
import torch
import torch.nn.functional as F

from cudal1.tasks import exec_task_module, load_suite
from cudal1.tasks.runtime import flatten_outputs, instantiate
from cudal1.tasks.suite_meta import ALGEBRAIC_SHORTCUT_TASKS

SMOKE_SUITE = load_suite("builtin", size="smoke")
FULL_BY_ID = load_suite("builtin", size="full").by_id()
TASK_IDS = [t.id for t in SMOKE_SUITE.tasks]
# inputs that are probability distributions by construction (cannot be negative)
NON_NEGATIVE_INPUT_TASKS = {"level1/32_KLDiv_Loss"}
SHAPE_RE = re.compile(r"\[([\d, ]*)\]")


def _dims(spec: str) -> list[int]:
    m = SHAPE_RE.search(spec)
    return [int(d) for d in m.group(1).split(",") if d.strip()] if m else []


def _numel(specs) -> int:
    total = 0
    for spec in specs:
        n = 1
        for d in _dims(spec):
            n *= d
        total += n
    return total


def test_suite_loads_without_errors_and_has_enough_tasks_per_level():
    assert SMOKE_SUITE.errors == []
    per_level = {lvl: sum(t.level == lvl for t in SMOKE_SUITE.tasks) for lvl in (1, 2, 3)}
    assert len(SMOKE_SUITE.tasks) >= 40
    assert per_level[1] >= 18 and per_level[2] >= 14 and per_level[3] >= 8, per_level
    for lvl in (1, 2, 3):  # KernelBench numbering: 1..n per level, no gaps
        numbers = sorted(t.number for t in SMOKE_SUITE.tasks if t.level == lvl)
        assert numbers == list(range(1, len(numbers) + 1))


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_task_file_follows_the_suite_rules(task_id):
    task = SMOKE_SUITE.by_id()[task_id]
    tree = ast.parse(task.source)
    assert task.description, "one-line module docstring"
    assert task.has_smoke
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert all(name == "torch" or name.startswith("torch.") for name in imported), imported
    # no randomness inside forward: the reference must be a function of its inputs and weights
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "forward":
            calls = {c.func.attr for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)}
            assert not calls & {"rand", "randn", "randint", "dropout", "bernoulli", "normal"}, calls


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_reference_runs_at_smoke_size_on_cpu(task_id):
    task = SMOKE_SUITE.by_id()[task_id]
    full = FULL_BY_ID[task_id]
    model, inputs = instantiate(task, "cpu", seed=0)
    with torch.no_grad():
        out = model(*inputs)
    leaves = flatten_outputs(out)
    assert leaves and all(isinstance(v, torch.Tensor) for v in leaves)
    for v in leaves:
        if v.is_floating_point():
            assert v.dtype == torch.float32
            assert torch.isfinite(v).all()
        else:
            assert v.dtype == torch.int64
    # the SMOKE override is applied: real inputs match the smoke specs, which are smaller than full
    tensors = [v for v in inputs if isinstance(v, torch.Tensor)]
    assert [f"{str(v.dtype).replace('torch.', '')}{list(v.shape)}" for v in tensors] == list(task.input_specs)
    assert task.input_specs != full.input_specs
    assert _numel(task.input_specs) < _numel(full.input_specs)
    module = exec_task_module(full.source, "full")
    smoke = module.SMOKE
    unchanged = {v for k, v in module.__dict__.items() if k.isupper() and k not in smoke and isinstance(v, int)}
    smoke_ints = {v for v in smoke.values() if isinstance(v, int)}
    full_only = {module.__dict__[k] for k, v in smoke.items() if isinstance(v, int)} - unchanged - smoke_ints
    assert full_only, "SMOKE changes at least one integer size"
    for spec in task.input_specs:
        assert not set(_dims(spec)) & full_only, f"{spec} still has a full-size dimension"
    # float32 inputs, and not all non-negative (ReLU-is-identity shortcuts must be wrong)
    floats = [v for v in tensors if v.is_floating_point()]
    assert all(v.dtype == torch.float32 for v in floats)
    if task_id not in NON_NEGATIVE_INPUT_TASKS:
        assert any((v < 0).any() for v in floats), "some input must take negative values"


def test_same_seed_gives_same_weights_and_inputs():
    task = SMOKE_SUITE.by_id()["level2/1_Gemm_BiasAdd_ReLU"]
    m1, x1 = instantiate(task, "cpu", seed=0)
    m2, x2 = instantiate(task, "cpu", seed=0)
    m3, x3 = instantiate(task, "cpu", seed=1)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert torch.equal(x1[0], x2[0]) and not torch.equal(x1[0], x3[0])


# What each algebraic task's output simplifies to, computed the cheap way.
def _ones(model, x):
    return torch.ones(x.shape[0], 1)


def _zeros_like_conv(model, x):
    return torch.zeros_like(model.conv(x))


def _gemv(model, x):
    w, b = model.gemm.weight, model.gemm.bias
    return F.leaky_relu((x @ w.sum(0) + b.sum()).unsqueeze(1), negative_slope=0.01)


def _mean_filter_conv(model, x):
    w = model.conv.weight.mean(0, keepdim=True)
    b = model.conv.bias.mean().reshape(1)
    return torch.sigmoid(F.conv3d(x, w, b))


SHORTCUTS = {
    "level2/3_Gemm_GELU_Sum_Softmax": (_ones, 0.0),
    "level2/6_Gemm_Max_SubtractMean_GELU": (lambda m, x: torch.zeros(x.shape[0], 1), 0.0),
    "level2/9_Conv2d_GroupNorm_Min_Clamp_Scale": (_zeros_like_conv, 0.0),
    "level2/12_Gemm_Sum_LogSumExp_LeakyReLU": (_gemv, 1e-4),
    "level2/15_Conv3d_ChannelMean_Max_Sigmoid": (_mean_filter_conv, 1e-5),
}


def test_shortcut_list_matches_the_suite():
    assert set(SHORTCUTS) == set(ALGEBRAIC_SHORTCUT_TASKS)
    assert len(ALGEBRAIC_SHORTCUT_TASKS) >= 4
    assert set(ALGEBRAIC_SHORTCUT_TASKS) <= set(TASK_IDS)


@pytest.mark.parametrize("task_id", sorted(ALGEBRAIC_SHORTCUT_TASKS))
@pytest.mark.parametrize("scale,shift", [(1.0, 0.0), (100.0, 0.0), (3.0, -20.0), (10.0, 50.0)])
def test_algebraic_shortcut_holds_for_any_input(task_id, scale, shift):
    task = SMOKE_SUITE.by_id()[task_id]
    model, inputs = instantiate(task, "cpu", seed=3)
    shortcut, rel_tol = SHORTCUTS[task_id]
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(inputs[0].shape, generator=gen) * scale + shift
    with torch.no_grad():
        expected = model(x)
        got = shortcut(model, x)
    assert got.shape == expected.shape
    if rel_tol == 0.0:
        assert torch.equal(got, expected), "the shortcut must be exact"
    else:
        err = (got - expected).abs().max().item()
        assert err <= rel_tol * max(1.0, expected.abs().max().item()), err


def test_non_shortcut_tasks_are_not_constant():
    # a cheap guard that the other level-2 tasks depend on their input
    for task in SMOKE_SUITE.tasks:
        if task.level != 2 or task.id in ALGEBRAIC_SHORTCUT_TASKS:
            continue
        model, inputs = instantiate(task, "cpu", seed=0)
        with torch.no_grad():
            a = model(*inputs)
            b = model(*[v * 1.5 - 0.7 for v in inputs])
        assert not torch.allclose(a, b), task.id
