"""Each algebraic rewrite: applied where it holds, exact or NaN-relaxed as documented, and not
applied where it would not hold for every input."""

from __future__ import annotations

import math
import os

import pytest
import torch
from rules_fixtures import (
    assert_exact,
    assert_nan_relaxed,
    build_pair,
    make_task,
    rules_applied,
    rules_candidate,
    run_pair,
    scaled,
)

from cudal1.policies.rules.analysis import trace_task
from cudal1.policies.rules.intervals import analyze
from cudal1.policies.rules.runtime import _WeightValues
from cudal1.policies.rules.simplify import simplify

os.environ.setdefault("OMP_NUM_THREADS", "1")

SOFTMAX_SIZE1 = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gemm = nn.Linear(8, 6)

    def forward(self, x):
        x = self.gemm(x)
        x = torch.sum(x, dim=1, keepdim=True)
        return torch.softmax(x, dim=1)
""", "[torch.randn(5, 8)]", name="SoftmaxSize1")

MAX_SUB_MEAN = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gemm = nn.Linear(8, 6)

    def forward(self, x):
        x = self.gemm(x)
        x = torch.max(x, dim=1, keepdim=True).values
        x = x - x.mean(dim=1, keepdim=True)
        return F.gelu(x)
""", "[torch.randn(5, 8)]", name="MaxSubMean")

MIN_CLAMP = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.GroupNorm(2, 4)

    def forward(self, x):
        x = self.norm(self.conv(x))
        x = torch.min(x, torch.tensor(0.0))
        x = torch.clamp(x, min=0.0, max=1.0)
        return x * 2.5
""", "[torch.randn(2, 3, 8, 8)]", name="MinClamp")

DIAG = make_task("""
class Model(nn.Module):
    def forward(self, A, B):
        return torch.diag(A) @ B
""", "[torch.randn(6), torch.randn(6, 5)]", name="Diag")

LOGSUMEXP = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.0)

    def forward(self, x):
        y = torch.logsumexp(x, dim=2, keepdim=True)
        y = torch.amax(y, dim=2)
        return self.drop(y).transpose(0, 1).transpose(0, 1).reshape(4, -1).reshape(-1)
""", "[torch.randn(4, 6, 1)]", name="LogSumExp")


def test_softmax_over_size1_dim_is_pinned_to_one():
    assert "size1-softmax" in rules_applied(SOFTMAX_SIZE1)
    p = rules_candidate(SOFTMAX_SIZE1)
    assert "self.gemm" not in p.source.split("class ModelNew")[1].split("def _reference_values")[0]
    for f in (None, scaled(1e3), scaled(1e30, special=True)):
        ref, new = run_pair(SOFTMAX_SIZE1, p.source, f)
        assert_nan_relaxed(ref, new)
    ref, new = run_pair(SOFTMAX_SIZE1, p.source)
    assert torch.equal(new, torch.ones_like(ref))


def test_max_minus_mean_over_size1_dim_gives_zeros():
    assert {"size1-reduction", "pinned-value"} <= set(rules_applied(MAX_SUB_MEAN))
    p = rules_candidate(MAX_SUB_MEAN)
    for f in (None, scaled(1e6), scaled(1.0, special=True)):
        ref, new = run_pair(MAX_SUB_MEAN, p.source, f)
        assert_nan_relaxed(ref, new)
    ref, new = run_pair(MAX_SUB_MEAN, p.source)
    assert ref.shape == (5, 1) and torch.count_nonzero(new) == 0


def test_min_then_clamp_pins_output_through_norm_and_scale():
    assert "pinned-value" in rules_applied(MIN_CLAMP)
    p = rules_candidate(MIN_CLAMP)
    assert "self.conv" not in p.source.split("class ModelNew")[1]
    for f in (None, scaled(100.0), scaled(1.0, special=True)):
        ref, new = run_pair(MIN_CLAMP, p.source, f)
        assert_nan_relaxed(ref, new)


def test_pinned_value_follows_input_shape():
    p = rules_candidate(MIN_CLAMP)
    ref, new = run_pair(MIN_CLAMP, p.source, lambda mod: [torch.randn(3, 3, 11, 9)])
    assert new.shape == ref.shape == (3, 4, 9, 7)


def test_diag_matmul_is_a_broadcast_multiply():
    assert rules_applied(DIAG) == ["diag-matmul"]
    p = rules_candidate(DIAG)
    assert "torch.diag" not in p.source.split("class ModelNew")[1]
    for f in (None, scaled(1e3)):
        ref, new = run_pair(DIAG, p.source, f)
        assert torch.allclose(ref, new, atol=1e-5, rtol=1e-6)
    ref, new = run_pair(DIAG, p.source, scaled(1.0, special=True))  # inf in B: reference NaN spreads
    assert_nan_relaxed(ref, new)


def test_size1_reductions_dropout_and_views_are_exact():
    rules = set(rules_applied(LOGSUMEXP))
    assert {"size1-reduction", "identity-dropout", "cancel-transposes", "merge-reshapes"} <= rules
    p = rules_candidate(LOGSUMEXP)
    body = p.source.split("class ModelNew")[1]
    assert "logsumexp" not in body and "transpose" not in body and "drop" not in body
    for f in (None, scaled(1e30), scaled(1.0, special=True)):
        ref, new = run_pair(LOGSUMEXP, p.source, f)
        assert_exact(ref, new)
    # the whole forward became views of the input: the output must not alias it
    x = torch.randn(4, 6, 1)
    ns = {}
    exec(compile(p.source, "c", "exec"), ns)  # noqa: S102 - our own generated candidate
    out = ns["ModelNew"]()(x)
    assert out.data_ptr() != x.data_ptr()


def test_softmax_rewrite_matches_torch_on_infinities():
    x = torch.tensor([[1.0], [float("inf")], [float("-inf")], [float("nan")], [-3e38]])
    assert_exact(torch.softmax(x, dim=1), torch.exp(x - x))
    assert_exact(torch.log_softmax(x, dim=1), x - x)
    assert_exact(torch.logsumexp(x, dim=1, keepdim=True), x)


@pytest.mark.parametrize("body", [
    # softmax over a dim of size 6: not constant
    "    def forward(self, x):\n        return torch.softmax(x, dim=1)\n",
    # min(x, 0) clamped to [-1, 1]: not pinned
    "    def forward(self, x):\n        return torch.clamp(torch.min(x, torch.tensor(0.0)), min=-1.0, max=1.0)\n",
    # dropout with p > 0 in training mode is random: kept
    ("    def __init__(self):\n        super().__init__()\n        self.drop = nn.Dropout(0.3)\n\n"
     "    def forward(self, x):\n        return self.drop(x)\n"),
    # diag of a matrix extracts its diagonal: no broadcast rewrite
    "    def forward(self, x):\n        return torch.diag(x[:, :5]) @ x[:5]\n",
    # transposes over different dims do not cancel
    "    def forward(self, x):\n        return x.transpose(0, 1).transpose(1, 0).sum(dim=1)\n",
])
def test_rules_do_not_fire_where_they_would_not_hold(body):
    task = make_task("class Model(nn.Module):\n" + body, "[torch.randn(5, 6)]", name="Negative")
    rules = rules_applied(task)
    assert rules in ([], ["cancel-transposes"]) if "transpose(0, 1).transpose(1, 0)" in body else rules == []


def test_inplace_graphs_get_no_identity_rewrites():
    task = make_task("""
class Model(nn.Module):
    def forward(self, x):
        y = x.sum(dim=1, keepdim=True)
        y.add_(1.0)
        return y
""", "[torch.randn(4, 1)]", name="Inplace")
    assert rules_applied(task) == []


def test_augmented_assignment_after_identity_rewrite_leaves_input_alone():
    # FX records `y += 1` as an out-of-place add, so the identity rewrite cannot mutate x
    task = make_task("""
class Model(nn.Module):
    def forward(self, x):
        y = x.sum(dim=1, keepdim=True)
        y += 1.0
        return y
""", "[torch.randn(4, 1)]", name="AugAssign")
    p = rules_candidate(task)
    x = torch.randn(4, 1)
    before = x.clone()
    ns = {}
    exec(compile(p.source, "c", "exec"), ns)  # noqa: S102 - our own generated candidate
    out = ns["ModelNew"]()(x)
    assert torch.equal(x, before) and torch.equal(out, before + 1.0)


def test_interval_analysis_pins_only_provable_points():
    tr = trace_task(MIN_CLAMP)
    env = analyze(tr.graph_module)
    by_name = {n.name: env[n] for n in tr.graph_module.graph.nodes}
    assert by_name["norm"].lo == -math.inf and by_name["norm"].nan
    assert by_name["min_1"].hi == 0.0 and not by_name["min_1"].point
    assert by_name["clamp"].point and by_name["clamp"].value == 0.0
    assert by_name["mul"].point and by_name["mul"].value == 0.0


def test_pinned_constant_is_computed_in_the_value_dtype():
    task = make_task("""
class Model(nn.Module):
    def forward(self, x):
        y = torch.softmax(x.mean(dim=1, keepdim=True), dim=1)
        return torch.tanh(y) * 2.0
""", "[torch.randn(5, 6)]", name="TanhConst")
    p = rules_candidate(task)
    ref, new = run_pair(task, p.source)
    assert torch.equal(ref, new)  # tanh(1) * 2 in float32, bit for bit


LINEAR_SUM = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gemm = nn.Linear(16, 24)
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)

    def forward(self, x, img):
        return torch.sum(self.gemm(x), dim=1), torch.mean(self.conv(img), dim=1, keepdim=True)
""", "[torch.randn(5, 16), torch.randn(2, 3, 9, 9)]", name="LinearSum")


def test_reduction_over_linear_or_conv_outputs_folds_into_the_weights():
    assert rules_applied(LINEAR_SUM).count("reduce-after-linear") == 2
    p = rules_candidate(LINEAR_SUM)
    body = p.source.split("class ModelNew")[1]
    assert "self.gemm(" not in body and "self.conv(" not in body
    for f in (None, scaled(100.0)):
        (r1, r2), (n1, n2) = run_pair(LINEAR_SUM, p.source, f)
        assert r1.shape == n1.shape and r2.shape == n2.shape
        assert torch.allclose(r1, n1, rtol=1e-4, atol=1e-3 * max(1.0, r1.abs().max().item()))
        assert torch.allclose(r2, n2, rtol=1e-4, atol=1e-4 * max(1.0, r2.abs().max().item()))


@pytest.mark.parametrize("body", [
    "        self.conv = nn.Conv2d(4, 4, 3, groups=2)\n\n    def forward(self, x):\n        return self.conv(x).sum(dim=1)\n",
    "        self.conv = nn.Conv2d(4, 4, 3)\n\n    def forward(self, x):\n        return self.conv(x).sum(dim=0)\n",
    "        self.conv = nn.Conv2d(4, 4, 3)\n\n    def forward(self, x):\n        y = self.conv(x)\n        return y.sum(dim=1) + y\n",
])
def test_reduce_after_linear_only_where_it_holds(body):
    task = make_task("class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n" + body,
                     "[torch.randn(2, 4, 8, 8)]", name="NoFold")
    assert "reduce-after-linear" not in rules_applied(task)


# ------------------------------------------------------------ what rules return, and only that

BATCH_NORMS = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
""", "[torch.randn(2, 3, 9, 9)]", name="TwoBatchNorms")


def test_simplify_gives_rules_a_read_only_context():
    def writes_context(gm, ctx):
        ctx["helpers"] = []
        return []

    with pytest.raises(TypeError):
        simplify(trace_task(BATCH_NORMS), rules=(writes_context,))


def test_helpers_and_kept_values_come_from_the_rewrites_each_once():
    s = simplify(trace_task(BATCH_NORMS))
    folds = [r for r in s.rewrites if r.rule == "batchnorm-eval-fold"]
    assert len(folds) == 2 and all(r.helpers and r.kept for r in folds)
    assert [h.name for h in s.helpers] == ["_layer_batch_norm"]  # returned twice, listed once
    assert s.init_lines == ["self._batch_norm_fold_0 = _WeightValues(_fold_batch_norm)",
                            "self._batch_norm_fold_1 = _WeightValues(_fold_batch_norm)"]
    assert isinstance(s.graph_module._batch_norm_fold_1, _WeightValues)  # attached for the analysis runs
    source = rules_candidate(BATCH_NORMS).source
    assert source.count("class _WeightValues") == 1 and source.count("def _layer_batch_norm(") == 1
    ref, new = build_pair(BATCH_NORMS, source)
    ref.eval()
    new.eval()
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert torch.allclose(ref(x), new(x), rtol=1e-5, atol=1e-5)


def test_what_the_final_graph_no_longer_uses_is_left_out():
    """A later rule may replace the node that read a kept value or called a helper."""
    from cudal1.policies.rules.batchnorm import fold_eval_batch_norm
    from cudal1.policies.rules.graph_utils import Rewrite

    def undo_folds(gm, ctx):
        out = []
        for n in list(gm.graph.nodes):
            if n.op == "call_function" and n.name.endswith("_folded"):
                x, layer, bn, _ = n.args
                with gm.graph.inserting_before(n):
                    y = gm.graph.call_module(bn.target, (gm.graph.call_module(layer.target, (x,)),))
                n.replace_all_uses_with(y)
                gm.graph.erase_node(n)
                out.append(Rewrite("undo", n.name, "as written"))
        return out

    s = simplify(trace_task(BATCH_NORMS), rules=(fold_eval_batch_norm, undo_folds), pin_values=False)
    assert "batchnorm-eval-fold" in [r.rule for r in s.rewrites]
    assert s.helpers == [] and s.init_lines == [] and not s.extra_helper_sources
