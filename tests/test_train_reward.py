"""Reward smoothing, rounding, raw rewards per verdict, group normalization and clipping."""

import math

import pytest

from cudal1.judge.verdict import Finding, Verdict
from cudal1.train.config import RewardConfig
from cudal1.train.reward import (
    bucket_means,
    normalize_groups,
    raw_reward,
    round_toward_one,
    smoothed_speedup,
    smoothed_time,
    summarize,
)


def verdict(kind="accepted", speedup=None, details=None, correct=None):
    return Verdict(verdict=kind, correct=kind == "accepted" if correct is None else correct,
                   speedup=speedup if kind == "accepted" else None, ref_ms=1.0, candidate_ms=1.0, max_abs_error=0.0,
                   findings=(Finding("pointer-keyed-cache", "reject", "cache"),) if kind == "rejected" else (),
                   device="cpu", torch="x", details=details or {})


def test_noisy_bucket_is_discarded():
    steady = [1.0] * 6
    noisy = [1.0, 5.0, 1.0, 5.0, 1.0, 5.0]  # relative variance ~0.44, far above 0.005
    times = steady + noisy + steady
    means = bucket_means(times, buckets=3, variance_cut=0.005)
    assert means == [1.0, 1.0]
    assert smoothed_time(times, buckets=3) == 1.0
    # Without the cut, the noisy bucket would pull the median of three bucket means up to 1.0 anyway,
    # but its mean (3.0) must not be among the kept ones.
    assert 3.0 not in means


def test_median_of_bucket_means_resists_one_outlier_bucket():
    times = [2.0] * 21
    times[10:13] = [9.0, 9.0, 9.0]  # a whole bucket slowed down uniformly (low variance, kept)
    assert smoothed_time(times, buckets=7) == 2.0


def test_all_buckets_noisy_falls_back_to_median():
    times = [1.0, 3.0] * 7
    assert bucket_means(times, 7, 0.005) == []
    assert smoothed_time(times, 7, 0.005) == 2.0


def test_fewer_times_than_buckets():
    assert bucket_means([2.0, 4.0], buckets=7) == [2.0, 4.0]
    assert smoothed_time([], 7) is None


@pytest.mark.parametrize("x,expected", [(1.239, 1.23), (1.0049, 1.0), (0.991, 1.0), (0.7351, 0.74), (2.0, 2.0), (0.5, 0.5)])
def test_round_toward_one(x, expected):
    assert round_toward_one(x, 2) == pytest.approx(expected)


def test_smoothed_speedup_uses_per_call_times():
    cfg = RewardConfig()
    ref = [10.0] * 14
    cand = [5.0] * 14
    cand[3] = 50.0  # one slow call makes its bucket noisy: discarded
    v = verdict("accepted", speedup=1.2, details={"ref_times_ms": ref, "candidate_times_ms": cand})
    assert smoothed_speedup(v, cfg) == 2.0  # not 1.2 (the judge's own summary), not skewed by the outlier


def test_smoothed_speedup_falls_back_to_verdict_speedup():
    v = verdict("accepted", speedup=1.237)
    assert smoothed_speedup(v, RewardConfig()) == 1.23
    assert smoothed_speedup(verdict("incorrect"), RewardConfig()) is None


def test_raw_rewards_by_verdict():
    cfg = RewardConfig(failure_reward=-1.0, hack_reward=-2.0, unparsable_reward=-3.0)
    assert raw_reward(verdict("accepted", 1.5), cfg).reward == 1.5
    assert raw_reward(verdict("accepted", 1.5), RewardConfig(transform="log")).reward == pytest.approx(math.log(1.5))
    assert raw_reward(verdict("rejected", correct=True), cfg).reward == -2.0
    assert raw_reward(verdict("incorrect"), cfg).reward == -1.0
    assert raw_reward(verdict("build_error"), cfg).status == "failed"
    assert raw_reward(verdict("timeout"), cfg).reward == -1.0
    assert raw_reward(None, cfg).reward == -3.0


def test_normalize_within_groups_and_clip():
    rewards = [1.0, 2.0, 3.0, 100.0, -1.0, -1.0, -1.0, -1.0]
    groups = ["a", "a", "a", "a", "b", "b", "b", "b"]
    out = normalize_groups(rewards, groups, clip=1.5)
    a = out[:4]
    assert a[3] == 1.5  # the outlier's z-score (~1.73) is clipped to k
    assert a[0] < a[1] < a[2] < 0  # order kept
    assert out[4:] == [0.0] * 4  # no spread, no signal
    assert all(-1.5 <= r <= 1.5 for r in out)
    unclipped = normalize_groups(rewards, groups, clip=None)
    assert unclipped[3] == pytest.approx(73.5 / 1801.25 ** 0.5)
    assert sum(unclipped[:4]) == pytest.approx(0.0, abs=1e-9)


def test_groups_are_independent():
    out = normalize_groups([1.0, 3.0, 10.0, 30.0], ["x", "x", "y", "y"], clip=1.5)
    assert out == [-1.0, 1.0, -1.0, 1.0]


def test_clip_only_when_not_normalizing():
    assert normalize_groups([5.0, -0.5], ["g", "g"], clip=1.5, normalize=False) == [1.5, -0.5]


def test_summary_metrics():
    cfg = RewardConfig()
    st = summarize([raw_reward(verdict("accepted", 2.0), cfg), raw_reward(verdict("incorrect"), cfg), raw_reward(None, cfg)])
    m = st.to_metrics()
    assert m["judge/accepted_rate"] == pytest.approx(1 / 3)
    assert m["judge/unparsable_rate"] == pytest.approx(1 / 3)
    assert m["judge/evaluations"] == 2.0
    assert m["judge/speedup_p50"] == 2.0
