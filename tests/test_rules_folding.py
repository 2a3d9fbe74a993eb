"""Constant folding of weight-only subgraphs: exact, computed once, recomputed when weights change,
differentiable while training, never applied to random or in-place work, and accepted by the judge."""

from __future__ import annotations

import os

import torch
from rules_fixtures import build_pair, make_task, rules_applied, rules_candidate, run_pair, scaled

os.environ.setdefault("OMP_NUM_THREADS", "1")

SCALED_WEIGHT = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 8))
        self.scale = nn.Parameter(torch.randn(6, 1))

    def forward(self, x):
        w = (self.weight * torch.sigmoid(self.scale)).t()
        return torch.relu(x @ w)
""", "[torch.randn(5, 8)]", name="ScaledWeight")

GEMM_SUM = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gemm = nn.Linear(16, 32)

    def forward(self, x):
        return torch.sum(self.gemm(x), dim=1, keepdim=True) * 0.5
""", "[torch.randn(4, 16)]", name="GemmSum")


def test_weight_only_subgraph_is_folded_and_exact():
    assert "fold-weights" in rules_applied(SCALED_WEIGHT)
    src = rules_candidate(SCALED_WEIGHT).source
    assert "_WeightValues(_fold_weight_values)" in src
    for f in (None, scaled(1e3)):
        ref, new = run_pair(SCALED_WEIGHT, src, f)
        assert torch.equal(ref, new)


def test_folded_values_are_kept_and_recomputed_when_weights_change():
    src = rules_candidate(SCALED_WEIGHT).source
    ref, new = build_pair(SCALED_WEIGHT, src)
    x = torch.randn(5, 8)
    with torch.no_grad():
        new(x)
        kept = new._weight_values.values
        new(x)
        assert new._weight_values.values is kept  # computed once
        # load_state_dict writes in place (version counter): recomputed, matches the new weights
        other = {k: torch.randn_like(v) for k, v in ref.state_dict().items()}
        ref.load_state_dict(other)
        new.load_state_dict(other)
        assert torch.equal(ref(x), new(x)) and new._weight_values.values is not kept
        # an optimizer-style in-place update
        new.scale.add_(1.0)
        ref.scale.add_(1.0)
        assert torch.equal(ref(x), new(x))
        # another dtype
        ref.double()
        new.double()
        assert torch.equal(ref(x.double()), new(x.double()))


def test_gradients_reach_the_weights_while_training():
    src = rules_candidate(SCALED_WEIGHT).source
    ref, new = build_pair(SCALED_WEIGHT, src)
    x = torch.randn(5, 8)
    for model in (ref, new):
        model(x).square().sum().backward()
    for (name, a), (_, b) in zip(ref.named_parameters(), new.named_parameters()):
        assert a.grad is not None and torch.allclose(a.grad, b.grad), name


def test_reduce_after_linear_weight_sums_are_folded():
    rules = rules_applied(GEMM_SUM)
    assert "reduce-after-linear" in rules and "fold-weights" in rules
    src = rules_candidate(GEMM_SUM).source
    ref, new = run_pair(GEMM_SUM, src)
    assert torch.allclose(ref, new, rtol=1e-5, atol=1e-4)


def test_random_inplace_and_output_values_are_not_folded():
    random_noise = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 8))

    def forward(self, x):
        return x @ (self.weight + torch.randn_like(self.weight)).t()
""", "[torch.randn(5, 8)]", name="NoisyWeight")
    inplace = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 8))

    def forward(self, x):
        w = self.weight * 2.0
        w.add_(x.sum())
        return x @ w.t()
""", "[torch.randn(5, 8)]", name="InplaceWeight")
    as_output = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 8))

    def forward(self, x):
        return x * 2.0, self.weight.t() * 3.0
""", "[torch.randn(5, 8)]", name="WeightOutput")
    for task in (random_noise, inplace, as_output):
        assert "fold-weights" not in rules_applied(task), task.name


def test_folded_candidate_is_accepted_by_the_judge(judge_cache):
    from cudal1.judge import JudgeConfig, evaluate

    v = evaluate(SCALED_WEIGHT, rules_candidate(SCALED_WEIGHT).source, device="cpu", config=JudgeConfig.quick(cache_dir=judge_cache))
    assert v.verdict == "accepted", v.to_record()
    assert not [f for f in v.findings if f.severity == "reject"]
