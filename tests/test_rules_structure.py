"""Layers sharing an input merged, an activation moved after a concatenation, adaptive
poolings that keep their input's shape dropped (structure.py), with inf and NaN inputs."""

from __future__ import annotations

import os

import pytest
import torch
from rules_fixtures import assert_close, assert_exact, build_pair, make_task, rules_applied, rules_candidate, run_pair, scaled

os.environ.setdefault("OMP_NUM_THREADS", "1")

INCEPTION = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(6, 4, kernel_size=1)
        self.b = nn.Sequential(nn.Conv2d(6, 3, kernel_size=1), nn.Conv2d(3, 5, kernel_size=3, padding=1))
        self.c = nn.Conv2d(6, 2, kernel_size=1)
        self.d = nn.Conv2d(6, 4, kernel_size=3, padding=1)
        self.q = nn.Linear(8, 8)
        self.k = nn.Linear(8, 8)

    def forward(self, x, t):
        return torch.cat([self.a(x), self.b(x), self.c(x), self.d(x)], 1), self.q(t).view(-1) * self.k(t).view(-1)
""", "[torch.randn(2, 6, 8, 8), torch.randn(3, 8)]", name="Inception")


def test_layers_reading_one_input_run_as_one_call():
    assert rules_applied(INCEPTION).count("merge-sibling-layers") == 2  # the 1x1 convolutions; the linears
    source = rules_candidate(INCEPTION).source
    assert source.count(".split(") == 2 and source.count(".contiguous()") == 2  # the parts a .view reads
    for f in (None, scaled(100.0, special=True)):
        refs, news = run_pair(INCEPTION, source, f)
        for r, n in zip(refs, news):
            assert_close(r, n, atol=1e-3 * max(1.0, r[torch.isfinite(r)].abs().max().item()))


@pytest.mark.parametrize("second", [
    "nn.Conv2d(6, 4, kernel_size=1, stride=2)",  # another stride
    "nn.Conv2d(6, 4, kernel_size=1, groups=2)",  # grouped
    "nn.Conv2d(6, 4, kernel_size=1, bias=False)",  # one without a bias
    "nn.Conv2d(6, 4, kernel_size=1, padding=1, padding_mode='reflect')",
])
def test_layers_that_differ_stay_apart(second):
    task = _two_layers("nn.Conv2d(6, 4, kernel_size=1)", second, "self.a(x).sum() + self.b(x).sum()", 6, "Apart")
    assert "merge-sibling-layers" not in rules_applied(task)


def _two_layers(a: str, b: str, result: str, channels: int, name: str):
    """A task with the layers ``self.a = a`` and ``self.b = b`` whose forward returns ``result``."""
    return make_task(f"""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = {a}
        self.b = {b}

    def forward(self, x):
        return {result}
""", f"[torch.randn(2, {channels}, 8, 8)]", name=name)


FIRE = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.squeeze = nn.Conv2d(6, 3, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.e1 = nn.Conv2d(3, 4, kernel_size=1)
        self.e1_act = nn.ReLU(inplace=True)
        self.e3 = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.e3_act = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.relu(self.squeeze(x))
        return torch.cat([self.e1_act(self.e1(x)), self.e3_act(self.e3(x))], 1)
""", "[torch.randn(2, 6, 8, 8)]", name="Fire")


def test_one_activation_after_the_concatenation_is_exact():
    assert "activation-after-cat" in rules_applied(FIRE)
    source = rules_candidate(FIRE).source
    for f in (None, scaled(100.0, special=True)):
        ref, new = run_pair(FIRE, source, f)
        assert_exact(ref, new)


@pytest.mark.parametrize("parts", [
    "[torch.relu(self.a(x)), F.relu6(self.b(x))]",  # two different activations
    "[torch.relu(self.a(x)), self.b(x)]",  # one part without
    "[F.relu(x, inplace=True), torch.relu(self.b(x))]",  # in place into the caller's input
])
def test_activation_look_alikes_before_a_cat_stay(parts):
    task = _two_layers("nn.Conv2d(3, 3, kernel_size=1)", "nn.Conv2d(3, 3, kernel_size=3, padding=1)", f"torch.cat({parts}, 1)",
                       3, "CatLookAlike")
    assert "activation-after-cat" not in rules_applied(task)


IDENTITY_POOLS = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.proj = nn.Conv2d(8, 8, kernel_size=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool2 = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        y = self.pool(self.relu(self.bn(self.conv(x))))
        y = self.pool2(self.relu(self.bn2(self.proj(y))))
        return torch.flatten(y, 1)
""", "[torch.randn(4, 3, 9, 9)]", name="Pools")


def test_a_pooling_to_its_input_size_is_dropped_behind_a_shape_guard():
    assert rules_applied(IDENTITY_POOLS).count("identity-pooling") == 1  # pool2: its input is already 1x1
    source = rules_candidate(IDENTITY_POOLS).source
    assert "traced at the task's shapes only" in source
    for f in (None, scaled(100.0, special=True)):
        ref, new = run_pair(IDENTITY_POOLS, source, f)
        assert_exact(ref, new)
    ref, new = build_pair(IDENTITY_POOLS, source)
    x = torch.randn(4, 3, 1, 1)  # another shape: the reference's forward
    with torch.no_grad():
        assert_exact(ref(x.clone()), new(x))


def test_a_pooling_of_a_tensor_read_elsewhere_stays():
    task = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        return self.pool(x), x
""", "[torch.randn(2, 3, 1, 1)]", name="PoolInput")
    assert "identity-pooling" not in rules_applied(task)
