"""The verdict's timing statistics (judge/stats.py) and the CPU load signals (pace, free cores)."""

from __future__ import annotations

import os
import random

from cudal1.judge.device import free_cores
from cudal1.judge.pace import best_pace, pace_loaded
from cudal1.judge.stats import PROCESS_RESOLUTION, contains_one, cv, speedup_interval, widen


def _rounds(mean: float, spread: float, seed: int, n_rounds: int = 3, calls: int = 10) -> list[list[float]]:
    rng = random.Random(seed)
    return [[mean * (1 + rng.uniform(-spread, spread)) for _ in range(calls)] for _ in range(n_rounds)]


def test_same_distribution_contains_one_and_a_real_gap_excludes_it():
    same = speedup_interval(_rounds(1.0, 0.2, 1), _rounds(1.0, 0.2, 2))
    assert contains_one(same)
    faster = speedup_interval(_rounds(4.0, 0.1, 3), _rounds(1.0, 0.1, 4))
    assert 3.0 < faster[0] < 4.0 < faster[1] < 5.0


def test_drift_between_rounds_widens_the_interval():
    steady = speedup_interval(_rounds(2.0, 0.05, 5), _rounds(1.0, 0.05, 6))
    drifting_ref = [[x * f for x in r] for r, f in zip(_rounds(2.0, 0.05, 5), (0.7, 1.0, 1.4))]
    drifting = speedup_interval(drifting_ref, _rounds(1.0, 0.05, 6))
    assert drifting[1] - drifting[0] > 2 * (steady[1] - steady[0])


def test_interval_is_deterministic_and_needs_two_calls_a_side():
    a, b = _rounds(2.0, 0.1, 7), _rounds(1.0, 0.1, 8)
    assert speedup_interval(a, b) == speedup_interval(a, b)
    assert speedup_interval([[1.0]], [[1.0]]) is None


def test_widen_and_cv():
    lo, hi = widen((1.1, 1.3), "cpu")
    r = PROCESS_RESOLUTION["cpu"]
    assert lo == 1.1 / (1 + r) and hi == 1.3 * (1 + r) and widen(None, "cuda") is None
    assert cv([2.0, 2.0]) == 0.0 and abs(cv([1.0, 3.0]) - 0.5) < 1e-12 and cv([1.0]) is None


def test_best_pace_is_remembered_and_a_slow_pace_is_loaded(tmp_path):
    path = tmp_path / "pace.json"
    assert best_pace(path, "cpu", 4.0) == 4.0
    assert best_pace(path, "cpu", 9.0) == 4.0  # a slower pace does not replace the best
    assert best_pace(path, "cpu", 3.0) == 3.0 and best_pace(path, "cpu", 5.0) == 3.0
    assert pace_loaded(9.0, 3.0) and not pace_loaded(3.5, 3.0) and not pace_loaded(None, 3.0)
    path.write_text("not json")
    assert best_pace(path, "cpu", 5.0) == 5.0  # a broken file costs only the comparison


def test_free_cores_counts_at_most_every_core():
    assert 1 <= free_cores(samples=2, gap_s=0.0) <= (os.cpu_count() or 1)
