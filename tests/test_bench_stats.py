"""Suite statistics against hand-computed values (verdicts here are plain data, not judged)."""

from __future__ import annotations

import math

import pytest

from cudal1.bench.stats import (
    TaskResult, bench_statistics, divide_intervals, fast_p, geometric_mean, percentile, select, status_counts, summarize,
)
from cudal1.judge.verdict import Verdict


def _v(kind: str, speedup: float | None = None, ci: tuple[float, float] | None = None) -> Verdict:
    return Verdict(verdict=kind, correct=kind == "accepted", speedup=speedup, ref_ms=None, candidate_ms=None,
                   max_abs_error=None, findings=(), device="cpu", torch="x", speedup_ci=ci)


def _tight(x: float) -> tuple[float, float]:
    """A narrow interval around x (2% either side): significant unless x is within 2% of 1.0."""
    return (x * 0.98, x * 1.02)


def test_percentile_linear_interpolation():
    xs = [4.0, 1.0, 3.0, 2.0]  # sorted 1 2 3 4
    assert percentile(xs, 50) == 2.5
    assert percentile(xs, 25) == 1.75  # pos 0.75 -> 1 + 0.75
    assert percentile(xs, 75) == 3.25  # pos 2.25 -> 3 + 0.25
    assert percentile(xs, 100) == 4.0 and percentile(xs, 0) == 1.0
    assert percentile([], 50) is None and percentile([7.0], 90) == 7.0


def test_geometric_mean():
    assert geometric_mean([1.0, 4.0]) == pytest.approx(2.0)
    assert geometric_mean([2.0, 8.0, 4.0]) == pytest.approx(4.0)
    assert geometric_mean([]) is None


def test_fast_p_counts_all_tasks():
    ratios = [2.0, 1.2, 0.9, None]
    assert fast_p(ratios, 0.0) == 0.75
    assert fast_p(ratios, 1.0) == 0.5
    assert fast_p(ratios, 1.5) == 0.25
    assert fast_p(ratios, 2.0) == 0.0  # strictly greater


def test_summarize_both_views_by_hand():
    # four tasks: 3.0x, 1.5x, 0.5x (accepted but slower), failed
    ratios = [3.0, 1.5, 0.5, None]
    intervals = [_tight(3.0), _tight(1.5), _tight(0.5), None]
    fb = summarize(ratios, view="fallback", intervals=intervals)
    # fallback values: 3.0, 1.5, 1.0, 1.0
    assert (fb.tasks, fb.valid, fb.faster) == (4, 3, 2)
    assert fb.mean == pytest.approx(6.5 / 4)
    assert fb.median == pytest.approx(1.25)
    assert fb.p25 == pytest.approx(1.0)
    assert fb.p75 == pytest.approx(1.5 + 0.25 * 1.5)  # pos 2.25 between 1.5 and 3.0
    assert fb.max == 3.0
    assert fb.geomean == pytest.approx((3.0 * 1.5) ** 0.25)
    raw = summarize(ratios, view="raw", intervals=intervals)
    # raw values: 0.5, 1.5, 3.0
    assert (raw.tasks, raw.valid, raw.faster) == (4, 3, 2)
    assert raw.mean == pytest.approx(5.0 / 3)
    assert raw.median == 1.5
    assert raw.p25 == pytest.approx(1.0) and raw.p75 == pytest.approx(2.25)
    assert raw.geomean == pytest.approx(math.pow(0.5 * 1.5 * 3.0, 1 / 3))
    assert raw.fast_p == fb.fast_p == {"fast_0": 0.75, "fast_0.5": 0.5, "fast_0.8": 0.5, "fast_1": 0.5,
                                        "fast_1.5": 0.25, "fast_2": 0.25}


def test_faster_threshold_is_one_percent():
    s = summarize([1.005, 1.02], view="raw", intervals=[(1.004, 1.006), (1.015, 1.025)])
    assert s.faster == 1


def test_faster_counts_only_significant_results():
    # 1.5x whose interval contains 1.0 is not faster; 1.3x without an interval (old verdict) neither
    s = summarize([1.5, 1.2, 1.3, None], view="raw", intervals=[(0.9, 2.1), (1.1, 1.3), None, None])
    assert (s.valid, s.faster, s.no_interval) == (3, 1, 1)
    assert s.mean == pytest.approx(4.0 / 3)  # the aggregates keep every accepted result
    assert summarize([1.5, 2.0], view="raw").faster == 0  # no intervals given: nothing is significant
    with pytest.raises(ValueError, match="one .or None. per ratio"):
        summarize([1.5, 2.0], intervals=[None])


def test_divide_intervals_adds_log_halfwidths_in_quadrature():
    lo, hi = divide_intervals(2.0, (1.8, 2.2), 1.0, (1.0, 1.0))  # an exact divisor: x's interval
    assert (lo, hi) == (pytest.approx(1.8), pytest.approx(2.2))
    lo, hi = divide_intervals(4.0, (4.0 / 1.1, 4.0 * 1.1), 2.0, (2.0 / 1.1, 2.0 * 1.1))
    w = math.exp(math.hypot(math.log(1.1), math.log(1.1)))
    assert lo == pytest.approx(2.0 / w) and hi == pytest.approx(2.0 * w)


def test_ratio_interval_against_baselines():
    cand = _v("accepted", 3.0, (2.7, 3.3))
    r = TaskResult("level1/1_A", 1, cand, {"compile": _v("accepted", 1.5, (1.4, 1.6)), "cuda-graph": _v("build_error"),
                                           "compile-reduce-overhead": _v("accepted", 1.5)})
    assert r.ratio_interval("eager") == (2.7, 3.3) and r.significant("eager")
    lo, hi = r.ratio_interval("compile")
    assert lo < 2.0 < hi and lo == pytest.approx(2.0 * math.exp(-math.hypot(math.log(3.0 / 2.7), math.log(1.6 / 1.5))))
    assert r.ratio_interval("cuda-graph") == (2.7, 3.3)  # failed baseline = exactly 1.0x
    assert r.ratio_interval("compile-reduce-overhead") is None  # baseline stored without an interval
    assert not r.significant("compile-reduce-overhead")
    old = TaskResult("level1/2_B", 1, _v("accepted", 3.0), {})
    assert old.ratio_interval() is None and not old.significant()
    assert TaskResult("level1/3_C", 1, _v("incorrect")).ratio_interval() is None


def test_empty_raw_view():
    s = summarize([None, None], view="raw")
    assert s.valid == 0 and s.mean is None and s.median is None and s.geomean is None
    assert summarize([None, None], view="fallback").mean == 1.0


def test_bench_statistics_per_level_and_against_baselines():
    results = [
        TaskResult("level1/1_A", 1, _v("accepted", 2.0, _tight(2.0)), {"compile": _v("accepted", 4.0, _tight(4.0))}),
        TaskResult("level1/2_B", 1, _v("incorrect"), {"compile": _v("accepted", 1.5, _tight(1.5))}),
        TaskResult("level2/3_C", 2, _v("accepted", 3.0, _tight(3.0)), {"compile": _v("build_error")}),
        TaskResult("level2/4_D", 2, None, {}),
    ]
    stats = bench_statistics(results, baselines=["eager", "compile"])
    # groups level1, level2, all; views 2; against eager+compile -> 12 summaries
    assert len(stats) == 12
    all_fb = select(stats, view="fallback", against="eager", group="all")[0]
    assert (all_fb.tasks, all_fb.valid, all_fb.faster) == (4, 2, 2)
    assert all_fb.mean == pytest.approx((2.0 + 1.0 + 3.0 + 1.0) / 4)
    l1_raw = select(stats, view="raw", against="eager", group="level1")[0]
    assert l1_raw.mean == 2.0 and l1_raw.valid == 1 and l1_raw.tasks == 2
    # against compile: task A 2/4 = 0.5; task C compile failed -> counts as eager: 3.0
    c_raw = select(stats, view="raw", against="compile", group="all")[0]
    assert sorted([c_raw.max, c_raw.mean]) == [pytest.approx(1.75), 3.0]
    assert c_raw.faster == 1
    c_fb = select(stats, view="fallback", against="compile", group="level1")[0]
    assert c_fb.mean == 1.0  # 0.5 -> 1.0 with fallback, failed -> 1.0
    assert c_fb.fast_p["fast_0"] == 0.5 and c_fb.fast_p["fast_0.5"] == 0.0
    assert status_counts(results) == {"accepted": 2, "incorrect": 1, "missing": 1}
