"""Monotone elementwise work moved after a max pooling, and BatchNorm folded in eval mode."""

from __future__ import annotations

import math
import os

import pytest
import torch
from rules_fixtures import build_pair, make_task, rules_applied, rules_candidate, run_pair, scaled

os.environ.setdefault("OMP_NUM_THREADS", "1")

POOLS = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bias = nn.Parameter(torch.randn(8, 1, 1))

    def forward(self, x):
        a = self.pool(self.relu(self.conv(x)))
        b = F.max_pool2d(F.leaky_relu(torch.clamp(x, min=-0.5) * 2.0 - 1.0, 0.2), 2)
        c = F.max_pool2d(torch.tanh(self.conv(x)) + self.bias, 2)
        return a, b, c
""", "[torch.randn(2, 3, 12, 12)]", name="Pools")


def test_monotone_chains_move_after_the_max_pool():
    assert rules_applied(POOLS).count("monotone-after-max-pool") == 3
    source = rules_candidate(POOLS).source
    body = source.split("class ModelNew")[1]
    assert body.index("self.pool(") < body.index("self.relu(")
    for f in (None, scaled(100.0), scaled(1.0, special=True)):
        ref, new = run_pair(POOLS, source, f)
        for i, (r, n) in enumerate(zip(ref, new)):
            assert torch.equal(torch.isnan(r), torch.isnan(n))
            if i < 2:  # relu, clamp, leaky_relu, + - * by numbers: exact
                assert torch.equal(r.nan_to_num(), n.nan_to_num())
            else:  # tanh: within an ulp
                assert torch.allclose(r.nan_to_num(), n.nan_to_num(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("expr", [
    "F.max_pool2d(F.gelu(x), 2)",                 # gelu dips below zero: not monotone
    "F.max_pool2d(x * -2.0, 2)",                  # a negative scale turns max into min
    "F.max_pool2d(x * self.w, 2)",                # a weight of unknown sign
    "F.max_pool2d(x + self.full, 2)",             # differs inside a window
    "F.max_pool2d(torch.relu(x), 2, return_indices=True)[0]",
    "F.avg_pool2d(torch.relu(x), 2)",             # an average does not commute with relu
])
def test_max_pool_look_alikes_are_left_alone(expr):
    task = make_task(f"""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 1, 1))
        self.full = nn.Parameter(torch.randn(3, 8, 8))

    def forward(self, x):
        return {expr}
""", "[torch.randn(2, 3, 8, 8)]", name="PoolLookAlike")
    assert "monotone-after-max-pool" not in rules_applied(task)


def test_a_value_used_after_the_chain_too_is_left_alone():
    task = make_task("""
class Model(nn.Module):
    def forward(self, x):
        y = torch.relu(x)
        return F.max_pool2d(y, 2), y.sum()
""", "[torch.randn(2, 3, 8, 8)]", name="PoolShared")
    assert "monotone-after-max-pool" not in rules_applied(task)


BN = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.lin = nn.Linear(8, 4, bias=False)
        self.bn1 = nn.BatchNorm1d(4)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        return self.bn1(self.lin(y.mean((2, 3)))) * 2.0
""", "[torch.randn(4, 3, 8, 8)]", name="BatchNorms")


def test_batch_norm_folds_in_eval_mode_and_runs_as_written_in_training():
    assert rules_applied(BN).count("batchnorm-eval-fold") == 2
    source = rules_candidate(BN).source
    ref, new = build_pair(BN, source)
    with torch.no_grad():
        for _ in range(3):  # training mode: batch statistics, running statistics updated alike
            x = torch.randn(4, 3, 8, 8)
            assert torch.equal(ref(x), new(x))
        assert torch.equal(ref.bn.running_var, new.bn.running_var) and torch.equal(ref.bn1.running_mean, new.bn1.running_mean)
        ref.eval()
        new.eval()
        x = torch.randn(4, 3, 8, 8) * 10
        assert torch.allclose(ref(x), new(x), rtol=1e-5, atol=1e-5)
        kept = new._batch_norm_fold_0.values
        new(x)
        assert new._batch_norm_fold_0.values is kept  # folded once
        new.bn.running_mean.add_(1.0)  # a statistic changes: folded again
        ref.bn.running_mean.add_(1.0)
        assert torch.allclose(ref(x), new(x), rtol=1e-5, atol=1e-5) and new._batch_norm_fold_0.values is not kept
        x[0, 0, 0, 0] = math.inf
        r, n = ref(x), new(x)
        keep = ~torch.isnan(r)
        assert not torch.isnan(n[keep]).any()


def test_batch_norm_without_running_statistics_is_left_alone():
    task = make_task(BN.source.split("\n\ndef get_inputs")[0].replace("nn.BatchNorm2d(8)", "nn.BatchNorm2d(8, track_running_stats=False)")
                     .replace("nn.BatchNorm1d(4)", "nn.BatchNorm1d(4, track_running_stats=False)"),
                     "[torch.randn(4, 3, 8, 8)]", name="NoStats")
    assert "batchnorm-eval-fold" not in rules_applied(task)


TRANSITION = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(8)
        self.conv = nn.Conv2d(8, 4, kernel_size=1, bias=True)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x):
        return self.pool(self.conv(torch.relu(self.bn(x))))
""", "[torch.randn(2, 8, 10, 10)]", name="Transition")


def test_average_pool_runs_before_a_pointwise_convolution():
    assert "pool-before-pointwise-conv" in rules_applied(TRANSITION)
    source = rules_candidate(TRANSITION).source
    body = source.split("class ModelNew")[1]
    assert body.index("self.pool(") < body.index("self.conv(")
    for f in (None, scaled(100.0), scaled(1.0, special=True)):
        ref, new = run_pair(TRANSITION, source, f)
        keep = ~torch.isnan(ref)  # (an inf input makes BatchNorm's batch statistics NaN)
        assert not torch.isnan(new[keep]).any()
        scale = max(1.0, ref[keep].abs().max().item()) if keep.any() else 1.0
        assert torch.allclose(ref[keep], new[keep], rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("conv,pool", [
    ("nn.Conv2d(8, 4, kernel_size=3, padding=1)", "nn.AvgPool2d(2)"),  # not pointwise
    ("nn.Conv2d(8, 4, kernel_size=1, stride=2)", "nn.AvgPool2d(2)"),  # strided
    ("nn.Conv2d(8, 4, kernel_size=1)", "nn.AvgPool2d(3, stride=2, padding=1)"),  # padded windows average zeros
    ("nn.Conv2d(8, 4, kernel_size=1)", "nn.MaxPool2d(2)"),  # a max does not commute with a sum
])
def test_pointwise_conv_look_alikes_stay(conv, pool):
    task = make_task(TRANSITION.source.split("\n\ndef get_inputs")[0].replace("nn.Conv2d(8, 4, kernel_size=1, bias=True)", conv)
                     .replace("nn.AvgPool2d(kernel_size=2, stride=2)", pool), "[torch.randn(2, 8, 10, 10)]", name="NotPointwise")
    assert "pool-before-pointwise-conv" not in rules_applied(task)


REPEATED = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.token = nn.Parameter(torch.randn(1, 1, 16))

    def forward(self, x):
        B = x.shape[0]
        t = torch.tanh(self.token.expand(B, -1, -1)) * 2.0
        r = torch.sigmoid(x[:1].repeat(B, 1, 1))
        return torch.cat([t, x], dim=1) + 1.0, r, torch.exp(x[:1].expand(B, -1, -1))
""", "[torch.randn(6, 5, 16)]", name="Repeated")


def test_elementwise_work_runs_once_before_a_repeat():
    assert rules_applied(REPEATED).count("elementwise-before-repeat") >= 3
    source = rules_candidate(REPEATED).source
    for f in (None, scaled(10.0), scaled(1.0, special=True)):
        ref, new = run_pair(REPEATED, source, f)
        for r, n in zip(ref, new):  # tanh, sigmoid, exp: torch's vector and scalar paths differ in the last bit
            assert torch.equal(torch.isnan(r), torch.isnan(n))
            assert torch.allclose(r.nan_to_num(), n.nan_to_num(), rtol=3e-7, atol=1e-30)
    ref, new = run_pair(REPEATED, source)
    new[2].add_(1.0)  # the returned value is a tensor of its own, as the reference's (not a stride-0 view)


def test_work_mixing_the_repeated_value_with_another_tensor_stays():
    task = make_task("""
class Model(nn.Module):
    def forward(self, x, y):
        return x[:1].expand(4, -1) * y
""", "[torch.randn(4, 8), torch.randn(4, 8)]", name="RepeatMixed")
    assert "elementwise-before-repeat" not in rules_applied(task)
