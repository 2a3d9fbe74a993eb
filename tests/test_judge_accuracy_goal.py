"""benchmarks/judge_accuracy.py's goal, on figures from the H200 run of 2026-12-02."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import judge_accuracy as ja  # noqa: E402


def test_below_20_us_the_floor_is_the_tolerance_to_the_last_bit():
    # zeros_like: do_bench 0.008128000423 ms (a float32 event time), judge 0.006848, floor 0.00128.
    assert ja.agrees(0.006848, 0.008128000423312187, 0.00128)
    assert not ja.agrees(0.006748, 0.008128000423312187, 0.00128)  # 0.1 us further: outside
    assert ja.tolerance_ms(0.008, 0.00128) == 0.00128 and ja.tolerance_ms(0.008, None) == 0.008 * ja.GOAL_REL


def test_from_20_us_only_five_percent_counts():
    # graph replay: do_bench 0.044576, judge 0.04184 (6.1% under): outside, whatever the floor.
    assert not ja.agrees(0.04184, 0.044576, 0.070976)
    assert ja.agrees(0.0430, 0.044576, 0.070976)  # 3.5% under
    assert ja.agrees(None, 0.044576, 0.001) is None
