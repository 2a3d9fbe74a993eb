"""Exemplar selection: bucket sampling follows the softmax over bucket means; the others."""

import math
import random

import pytest

from cudal1.judge.verdict import Verdict
from cudal1.policies.base import Attempt
from cudal1.search.exemplars import (
    PoolItem, bucket_probabilities, make_buckets, select_bucket, select_exemplars, select_island, select_topk,
)


def accepted(speedup: float, i: int, island=None) -> PoolItem:
    v = Verdict("accepted", True, speedup, 1.0, 1.0 / speedup, 0.0, (), "cpu", "2")
    return PoolItem(Attempt(source=f"class ModelNew: # {i}\n", verdict=v, candidate_id=i), island)


def failed(i: int) -> PoolItem:
    v = Verdict("build_error", False, None, None, None, None, (), "cpu", "2")
    return PoolItem(Attempt(source=f"broken {i}", verdict=v, candidate_id=i))


SPEEDUPS = [0.55, 0.56, 1.0, 1.6, 1.65, 2.5, 8.0]


def pool():
    return [accepted(s, i) for i, s in enumerate(SPEEDUPS)] + [failed(100)]


def expected(tau):
    items = [i for i in pool() if i.attempt.verdict.accepted]
    buckets = make_buckets(items)
    mean = sum(i.score for i in items) / len(items)
    return buckets, bucket_probabilities(buckets, tau, mean)


def test_buckets_group_close_speedups():
    buckets, probs = expected(1.0)
    sizes = [len(b.items) for b in buckets]
    assert sizes == [2, 1, 2, 1, 1]  # 0.55/0.56 and 1.6/1.65 share buckets
    assert math.isclose(sum(probs), 1.0)
    assert probs == sorted(probs)  # faster buckets are more likely


@pytest.mark.parametrize("tau", [0.5, 1.0, 3.0])
def test_first_pick_frequencies_match_softmax(tau):
    buckets, probs = expected(tau)
    of_source = {i.attempt.source: k for k, b in enumerate(buckets) for i in b.items}
    rng = random.Random(1234)
    n = 10000
    counts = [0] * len(buckets)
    items = pool()
    for _ in range(n):
        (pick,) = select_bucket(items, 1, rng, tau)
        counts[of_source[pick.source]] += 1
    chi2 = sum((c - n * p) ** 2 / (n * p) for c, p in zip(counts, probs))
    assert chi2 < 18.47, (counts, [round(n * p) for p in probs])  # chi-square, 4 dof, p = 0.001
    for c, p in zip(counts, probs):  # and each bucket within 4.5 binomial standard deviations
        assert abs(c - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1


def test_pairs_are_distinct_buckets_drawn_without_replacement():
    buckets, probs = expected(1.0)
    of_source = {i.attempt.source: k for k, b in enumerate(buckets) for i in b.items}
    rng = random.Random(7)
    n = 10000
    counts: dict[frozenset, int] = {}
    items = pool()
    for _ in range(n):
        a, b = select_bucket(items, 2, rng, 1.0)
        key = frozenset((of_source[a.source], of_source[b.source]))
        assert len(key) == 2  # never twice the same bucket
        counts[key] = counts.get(key, 0) + 1
    for (i, j) in [(3, 4), (0, 4), (2, 3)]:
        p = probs[i] * probs[j] / (1 - probs[i]) + probs[j] * probs[i] / (1 - probs[j])
        c = counts.get(frozenset((i, j)), 0)
        assert abs(c - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1, (i, j, c, n * p)


def test_uniform_within_a_bucket():
    rng = random.Random(3)
    items = [accepted(1.6, 0), accepted(1.65, 1), accepted(0.2, 2)]
    hits = {0: 0, 1: 0}
    for _ in range(4000):
        for a in select_bucket(items, 1, rng, tau=0.05):
            if a.candidate_id in hits:
                hits[a.candidate_id] += 1
    assert sum(hits.values()) > 3900
    assert abs(hits[0] - hits[1]) < 4.5 * math.sqrt(4000 * 0.25)


def test_low_tau_favours_the_fastest_bucket():
    rng = random.Random(0)
    picks = [select_bucket(pool(), 1, rng, tau=0.1)[0].speedup for _ in range(200)]
    assert picks.count(8.0) > 190


def test_fewer_buckets_than_exemplars_fills_with_distinct_candidates():
    items = [accepted(1.0, 0), accepted(1.01, 1), accepted(1.02, 2)]
    picks = select_bucket(items, 2, random.Random(0))
    assert len({p.candidate_id for p in picks}) == 2


def test_failed_and_duplicate_sources_are_not_exemplars():
    dup = accepted(3.0, 5)
    items = [failed(1), dup, PoolItem(Attempt(dup.attempt.source, Verdict("accepted", True, 2.0, 1, 1, 0, (), "cpu", "2")))]
    picks = select_exemplars("bucket", items, 2, random.Random(0))
    assert [p.speedup for p in picks] == [3.0]


def test_topk_and_random():
    assert [a.speedup for a in select_topk(pool(), 2)] == [8.0, 2.5]
    picks = select_exemplars("random", pool(), 3, random.Random(0))
    assert len({a.candidate_id for a in picks}) == 3 and all(a.verdict.accepted for a in picks)


def test_island_uses_own_pool_plus_seeds_and_migrates_sometimes():
    items = [accepted(1.0, 0, island=0), accepted(1.5, 1, island=0), accepted(9.0, 2, island=1), accepted(1.2, 3, island=None)]
    rng = random.Random(0)
    seen_migrant = 0
    for _ in range(400):
        picks = select_island(items, 0, 2, rng, migrate=0.1)
        ids = {a.candidate_id for a in picks}
        seen_migrant += 2 in ids
        assert ids <= {0, 1, 2, 3}
    assert 0 < seen_migrant < 120  # migration happens, but rarely


def test_unknown_method():
    with pytest.raises(ValueError, match="bucket, random, topk, island"):
        select_exemplars("best", pool(), 2, random.Random(0))
