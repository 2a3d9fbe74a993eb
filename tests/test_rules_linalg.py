"""Bias adds into the GEMM, matrix chains by cost, scales and shifts moved into weights,
common subexpressions, dead code, redundant clones, and tracing at the task's shapes."""

from __future__ import annotations

import math
import os

import pytest
import torch
from rules_fixtures import assert_exact, build_pair, make_task, rules_applied, rules_candidate, run_pair, scaled

from cudal1.policies.rules.analysis import trace_task

os.environ.setdefault("OMP_NUM_THREADS", "1")


def close(ref, new, rel=1e-5):
    """Equal up to the rounding of a reordered sum: relative to the output's scale."""
    assert ref.shape == new.shape
    assert torch.equal(torch.isnan(ref), torch.isnan(new))
    fin = torch.isfinite(ref)
    assert torch.equal(torch.isinf(ref), torch.isinf(new)) and torch.equal(ref[~fin & ~torch.isnan(ref)], new[~fin & ~torch.isnan(new)])
    assert torch.allclose(ref[fin], new[fin], rtol=rel, atol=rel * max(1.0, ref[fin].abs().max().item()))


MATMUL_BIAS = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.randn(16, 24))
        self.V = nn.Parameter(torch.randn(24, 16))
        self.b = nn.Parameter(torch.randn(24))

    def forward(self, x, y):
        return x @ self.W + self.b, self.b + torch.matmul(y, self.W), y @ self.V.t() + self.b
""", "[torch.randn(5, 16), torch.randn(2, 3, 16)]", name="MatmulBias")


def test_matmul_plus_bias_becomes_addmm_or_linear():
    assert rules_applied(MATMUL_BIAS).count("matmul-bias") == 3
    source = rules_candidate(MATMUL_BIAS).source
    body = source.split("class ModelNew")[1]
    assert "torch.addmm(" in body and body.count("linear(") == 2
    for f in (None, scaled(100.0), scaled(1.0, special=True)):
        ref, new = run_pair(MATMUL_BIAS, source, f)
        for r, n in zip(ref, new):
            close(r, n)


@pytest.mark.parametrize("bias", ["torch.randn(5, 24)", "torch.randn(5, 1)"])
def test_bias_that_is_not_per_column_is_left_alone(bias):
    task = make_task(f"""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.randn(16, 24))
        self.b = nn.Parameter({bias})

    def forward(self, x):
        return x @ self.W + self.b
""", "[torch.randn(5, 16)]", name="NotBias")
    assert "matmul-bias" not in rules_applied(task)


CHAIN = make_task("""
class Model(nn.Module):
    def forward(self, A, B, C):
        return torch.matmul(torch.matmul(A, B), C)
""", "[torch.randn(8, 256), torch.randn(256, 256), torch.randn(256, 2)]", name="Chain")


def test_matrix_chain_takes_the_cheaper_order():
    assert rules_applied(CHAIN) == ["matrix-chain"]
    p = rules_candidate(CHAIN)
    assert "A @ (B @ C)" in p.notes
    for f in (None, scaled(10.0)):
        ref, new = run_pair(CHAIN, p.source, f)
        close(ref, new, rel=1e-4)


def test_matrix_chain_of_equal_cost_is_left_alone():
    task = make_task(CHAIN.source.split("\n\ndef get_inputs")[0], "[torch.randn(32, 32), torch.randn(32, 32), torch.randn(32, 32)]",
                     name="SquareChain")
    assert "matrix-chain" not in rules_applied(task)


AFFINE = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 12)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bias = nn.Parameter(torch.randn(6, 1, 1))
        self.convt = nn.ConvTranspose2d(3, 4, 3, stride=2)
        self.nobias = nn.Conv2d(3, 6, 3, bias=False)
        self.shift = nn.Parameter(torch.randn(6, 1, 1))

    def forward(self, x, img):
        a = torch.relu((self.lin(x) - 0.5) * 2.0)
        b = torch.tanh((self.conv(img) + self.bias) / 3.0)
        c = self.convt(img) * -1.5
        d = self.nobias(img) - self.shift
        return a, b, c, d
""", "[torch.randn(5, 16), torch.randn(2, 3, 9, 9)]", name="Affine")


def test_scales_and_shifts_move_into_the_weights():
    assert rules_applied(AFFINE).count("affine-into-weights") == 6
    source = rules_candidate(AFFINE).source
    body = source.split("class ModelNew")[1].split("def _reference_values")[0]
    assert "self.lin(" not in body and "self.conv(" not in body and "self.convt(" not in body and "self.nobias(" not in body
    assert "_WeightValues(_fold_weight_values)" in source  # the new weights are computed once
    for f in (None, scaled(100.0), scaled(1.0, special=True)):
        ref, new = run_pair(AFFINE, source, f)
        for r, n in zip(ref, new):
            keep = ~torch.isnan(r)  # infinite inputs: NaN-relaxed
            assert not torch.isnan(n[keep]).any()
            close(r[keep], n[keep], rel=1e-5)


WEIGHT_FACTORS = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 12)
        self.scale = nn.Parameter(torch.randn(12))
        self.conv = nn.Conv2d(3, 6, 3)
        self.mult = nn.Parameter(torch.randn(6, 1, 1))
        self.convt = nn.ConvTranspose2d(3, 4, 3, stride=2)
        self.s1 = nn.Parameter(torch.tensor(0.5))

    def forward(self, x, img):
        return self.lin(x) * self.scale, self.mult * self.conv(img), self.convt(img) * self.s1
""", "[torch.randn(5, 16), torch.randn(2, 3, 9, 9)]", name="WeightFactors")


RELU_ATTENTION = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.randn(8, 8))

    def forward(self, q, k, v):
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        return F.relu(att) @ v, (q @ self.W) / 4.0, torch.matmul(k, q.transpose(-2, -1)) * -3.0
""", "[torch.randn(2, 16, 8), torch.randn(2, 16, 8), torch.randn(2, 16, 8)]", name="ReluAttention", extra="import math\n")


def test_a_scale_moves_onto_the_smaller_operand_of_a_product():
    applied = rules_applied(RELU_ATTENTION)
    assert applied.count("scale-before-matmul") == 3 and "fold-weights" in applied  # W / 4 depends on W alone
    source = rules_candidate(RELU_ATTENTION).source
    for f in (None, scaled(100.0), scaled(100.0, special=True)):
        for r, n in zip(*run_pair(RELU_ATTENTION, source, f)):
            close(r, n)


PATCHES = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, kernel_size=4, stride=4)
        self.flatten = nn.Flatten()
        self.proj = nn.Linear(6 * 2 * 3, 5)

    def forward(self, x):
        return self.proj(self.flatten(self.conv(x)))
""", "[torch.randn(2, 3, 8, 12)]", name="Patches")


def test_a_patch_embedding_and_its_projection_become_one_linear_layer():
    assert "patch-embedding-into-linear" in rules_applied(PATCHES)
    source = rules_candidate(PATCHES).source
    assert "traced at the task's shapes only" in source
    for f in (None, scaled(100.0), scaled(100.0, special=True)):
        ref, new = run_pair(PATCHES, source, f)
        close(ref, new, rel=1e-4)
    ref, new = build_pair(PATCHES, source)
    x = torch.randn(2, 3, 8, 12)
    with torch.no_grad():
        close(ref(x), new(x), rel=1e-4)
        assert new._patch_fold_0.values[2] is True  # composed
        ref.conv.weight[0, 0, 0, 0] = math.inf
        new.conv.weight[0, 0, 0, 0] = math.inf
        r, n = ref(x), new(x)
        assert new._patch_fold_0.values[2] is False  # an infinite weight: the written form
        assert_exact(r, n)
        x = torch.randn(2, 3, 9, 12)  # a row the convolution drops: another shape, the reference's forward
        assert_exact(ref(x), new(x))


def test_a_patch_convolution_that_overlaps_stays():
    task = make_task(PATCHES.source.split("\n\ndef get_inputs")[0].replace("stride=4", "stride=2").replace("6 * 2 * 3", "6 * 3 * 5"),
                     "[torch.randn(2, 3, 8, 12)]", name="Overlap")
    assert "patch-embedding-into-linear" not in rules_applied(task)


def test_weight_factors_fold_while_finite_and_run_as_written_otherwise():
    assert rules_applied(WEIGHT_FACTORS).count("weight-factor-into-weights") == 3
    source = rules_candidate(WEIGHT_FACTORS).source
    for f in (None, scaled(100.0), scaled(1.0, special=True)):
        ref, new = run_pair(WEIGHT_FACTORS, source, f)
        for r, n in zip(ref, new):
            keep = ~torch.isnan(r)
            assert not torch.isnan(n[keep]).any()
            close(r[keep], n[keep])
    ref, new = build_pair(WEIGHT_FACTORS, source)
    x, img = torch.randn(5, 16), torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        new(x, img)
        assert new._factor_fold_0.values[2] is True  # folded
        for m in (ref, new):  # an infinite factor: y * inf is NaN where y is 0, which folded weights cannot say
            m.scale[3] = math.inf
            m.mult[2] = -math.inf
        for r, n in zip(ref(x, img), new(x, img)):
            assert torch.equal(torch.isnan(r), torch.isnan(n)) and torch.equal(r.nan_to_num(), n.nan_to_num())
        assert new._factor_fold_0.values[2] is False


@pytest.mark.parametrize("expr,init", [
    ("self.lin(x) * self.full", "self.full = nn.Parameter(torch.randn(5, 12))"),  # differs per row
    ("self.lin(x) * x[:, :12]", ""),  # an input
    ("self.lin(x) * self.w3", "self.w3 = nn.Parameter(torch.randn(3, 1, 12))"),  # widens the result
])
def test_weight_factor_look_alikes_stay(expr, init):
    assert "weight-factor-into-weights" not in rules_applied(_after_linear(expr, init))


def _after_linear(expr: str, init: str):
    """A task whose forward returns ``expr`` of ``self.lin`` (16 -> 12) and whatever ``init`` defines."""
    return make_task(f"""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 12)
        {init or 'pass'}

    def forward(self, x):
        return {expr}
""", "[torch.randn(5, 16)]", name="AfterLinear")


@pytest.mark.parametrize("expr,init", [
    ("self.lin(x) * self.scale", "self.scale = nn.Parameter(torch.randn(12))"),  # a weight factor: its own rule
    ("self.lin(x) + self.full", "self.full = nn.Parameter(torch.randn(5, 12))"),  # not per output feature
    ("self.lin(x) * x[:, :12]", ""),  # an input as factor
    ("self.lin(x) / 0.0", ""),
    ("self.lin(x) * float('inf')", ""),
])
def test_affine_look_alikes_stay(expr, init):
    assert "affine-into-weights" not in rules_applied(_after_linear(expr, init))


@pytest.mark.parametrize("act,ok", [("torch.relu(V)", True), ("F.leaky_relu(V, 0.1)", True), ("self.act(V)", True),
                                    ("torch.tanh(V)", False), ("F.leaky_relu(V, -0.5)", False)])
def test_a_positive_scale_passes_through_relu_into_the_weights(act, ok):
    task = make_task(f"""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 12)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.lin(x)
        return {act.replace("V", "y")} / 4.0, {act.replace("V", "self.lin(x * 2)")} * -2.0
""", "[torch.randn(5, 16)]", name="ScaleThroughRelu")
    assert rules_applied(task).count("affine-into-weights") == (1 if ok else 0)  # never the negative scale
    if ok:
        source = rules_candidate(task).source
        assert source.split("class ModelNew")[1].count("self.lin(") == 1
        for f in (None, scaled(100.0), scaled(1.0, special=True)):
            ref, new = run_pair(task, source, f)
            for r, n in zip(ref, new):
                keep = ~torch.isnan(r)
                assert not torch.isnan(n[keep]).any()
                close(r[keep], n[keep])


def test_a_layer_output_used_twice_is_not_folded():
    task = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 12)

    def forward(self, x):
        y = self.lin(x)
        return y * 2.0 + y
""", "[torch.randn(5, 16)]", name="UsedTwice")
    assert "affine-into-weights" not in rules_applied(task)


CSE = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.unused = nn.Linear(8, 8)
        self.bn = nn.BatchNorm1d(8)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        a = torch.exp(self.lin(x)) + torch.exp(self.lin(x))
        dead = self.unused(x) * 2
        self.bn(x)  # unused, but it updates the running statistics
        r = torch.rand_like(x) + torch.rand_like(x)
        keep = x.clone()
        return a, r, self.drop(x) + self.drop(x), keep * 1.0
""", "[torch.randn(4, 8)]", name="Cse")


def test_common_subexpressions_dead_code_and_copies():
    applied = rules_applied(CSE)
    assert applied.count("common-subexpression") == 2  # lin and exp, not rand_like nor dropout
    assert applied.count("dead-code") == 2 and "redundant-clone" in applied
    source = rules_candidate(CSE).source
    body = source.split("class ModelNew")[1]
    assert body.count("self.lin(") == 1 and body.count("torch.exp(") == 1 and "self.unused(" not in body
    assert body.count("rand_like(") == 2 and body.count("self.drop(") == 2 and "self.bn(" in body and ".clone()" not in body
    ref_model, new_model = build_pair(CSE, source)
    x = torch.randn(4, 8)
    with torch.no_grad():
        torch.manual_seed(1)
        ref = ref_model(x)
        torch.manual_seed(1)
        new = new_model(x)
    for r, n in zip(ref, new):  # the same random numbers, drawn in the same order
        assert torch.equal(r, n)
    assert torch.equal(ref_model.bn.running_mean, new_model.bn.running_mean)  # the unused BatchNorm still ran


def test_clones_stay_when_something_writes_in_place_or_they_are_returned():
    task = make_task("""
class Model(nn.Module):
    def forward(self, x):
        y = x.clone()
        y.add_(1.0)
        return y, x.clone()
""", "[torch.randn(4, 8)]", name="Clones")
    assert "redundant-clone" not in rules_applied(task)
    task = make_task("""
class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x).clone()
""", "[torch.randn(4, 8)]", name="ReturnedClone")
    assert "redundant-clone" not in rules_applied(task)


SHAPES = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.arange(64.0).view(8, 8))

    def forward(self, x):
        n = x.size(1)
        if x.dim() == 3:
            x = x.sum(dim=0)
        y = x * torch.sigmoid(x) / math.sqrt(n)
        return y + self.table[:n, :n]
""", "[torch.randn(2, 6, 6)]", name="Shapes", extra="import math\n")


def test_shapes_used_as_numbers_trace_at_the_task_shapes_with_a_guard():
    traced = trace_task(SHAPES)
    assert traced.traced and traced.shape_guard is not None
    source = rules_candidate(SHAPES).source
    assert "torch.nn.functional.silu" in source and "return super().forward(x)" in source
    ref, new = run_pair(SHAPES, source)
    close(ref, new)
    ref, new = run_pair(SHAPES, source, lambda mod: [torch.randn(3, 5, 5)])  # another shape: the reference runs
    assert_exact(ref, new)


def test_forward_that_assigns_state_is_not_rewritten():
    task = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.hidden = torch.zeros(4, 8)

    def forward(self, x):
        self.hidden = torch.tanh(self.lin(x) + self.hidden)
        unused = self.lin(self.hidden) * 2
        return self.hidden * torch.sigmoid(self.hidden)
""", "[torch.randn(4, 8)]", name="Stateful")
    traced = trace_task(task)
    assert not traced.traced and "assigns hidden" in traced.trace_error
    assert rules_applied(task) == []


def test_math_on_symbolic_sizes_gives_a_loadable_candidate():
    """FX writes `torch.fx._symbolic_trace.wrap("math_sqrt")` for math on traced sizes; a
    candidate must not (it would fail at class creation)."""
    task = make_task("""
class Model(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x) / math.sqrt(x.size(-1))
""", "[torch.randn(4, 9)]", name="SymSqrt", extra="import math\n")
    source = rules_candidate(task).source
    assert "_symbolic_trace.wrap" not in source
    ref, new = run_pair(task, source)
    close(ref, new)
    assert math.isfinite(new.sum().item())
