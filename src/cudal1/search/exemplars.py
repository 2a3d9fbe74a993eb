"""Choosing the earlier implementations a contrastive prompt shows (``--exemplar-selection``).

- ``bucket`` (CUDA-L1): successful candidates are grouped into buckets of equal width in
  log-speedup; N distinct buckets are drawn without replacement with probabilities
  softmax((bucket mean - global mean) / tau) over log-speedups; one candidate is drawn
  uniformly from each chosen bucket. A low tau favours the fast buckets; a high tau
  approaches uniform over buckets (not over candidates: a crowded bucket of near-identical
  codes counts once, which keeps the prompt's pair contrastive).
- ``random``: N distinct candidates uniformly.
- ``topk``: the N fastest.
- ``island``: each lineage (sample slot) keeps its own pool; with probability ``migrate``
  the best candidate of another island joins the pool; bucket sampling within the pool.

Only accepted candidates with a speedup are exemplars (the loop removes the ones the
adversarial checker rejected). Candidates are de-duplicated by source.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..policies.base import Attempt
from ..tasks.contract import source_hash

METHODS = ("bucket", "random", "topk", "island")
DEFAULT_BUCKET_WIDTH = math.log(1.25)  # speedups within ~25% of each other share a bucket


@dataclass(frozen=True)
class PoolItem:
    """An exemplar candidate and its island (lineage); ``island=None`` belongs to every island (seeds)."""

    attempt: Attempt
    island: int | None = None

    @property
    def score(self) -> float:
        return math.log(max(self.attempt.speedup or 0.0, 1e-9))


@dataclass(frozen=True)
class Bucket:
    index: int  # floor(log-speedup / width)
    items: tuple[PoolItem, ...]

    @property
    def mean(self) -> float:
        return sum(i.score for i in self.items) / len(self.items)


def usable(items: Sequence[PoolItem]) -> list[PoolItem]:
    """Accepted items with a positive speedup, one per source (the fastest measurement kept)."""
    best: dict[str, PoolItem] = {}
    for item in items:
        a = item.attempt
        if not a.verdict.accepted or not a.speedup or a.speedup <= 0:
            continue
        key = source_hash(a.source)
        if key not in best or a.speedup > best[key].attempt.speedup:
            best[key] = item
    return list(best.values())


def make_buckets(items: Sequence[PoolItem], width: float = DEFAULT_BUCKET_WIDTH) -> list[Bucket]:
    groups: dict[int, list[PoolItem]] = {}
    for item in items:
        groups.setdefault(math.floor(item.score / width), []).append(item)
    return [Bucket(k, tuple(v)) for k, v in sorted(groups.items())]


def bucket_probabilities(buckets: Sequence[Bucket], tau: float, global_mean: float) -> list[float]:
    """softmax((bucket mean - global mean) / tau), computed stably."""
    if tau <= 0:
        raise ValueError("tau must be positive (e.g. 1.0); lower values favour fast buckets more")
    logits = [(b.mean - global_mean) / tau for b in buckets]
    top = max(logits)
    weights = [math.exp(x - top) for x in logits]
    total = sum(weights)
    return [w / total for w in weights]


def select_bucket(items: Sequence[PoolItem], n: int, rng: random.Random, tau: float = 1.0,
                  width: float = DEFAULT_BUCKET_WIDTH) -> list[Attempt]:
    items = usable(items)
    if n <= 0 or not items:
        return []
    if len(items) <= n:
        return [i.attempt for i in items]
    buckets = make_buckets(items, width)
    global_mean = sum(i.score for i in items) / len(items)
    probs = bucket_probabilities(buckets, tau, global_mean)
    chosen: list[PoolItem] = []
    remaining = list(range(len(buckets)))
    weights = list(probs)
    while remaining and len(chosen) < n:
        k = rng.choices(range(len(remaining)), weights=[weights[j] for j in remaining])[0]
        chosen.append(rng.choice(buckets[remaining[k]].items))
        remaining.pop(k)
    if len(chosen) < n:  # fewer buckets than exemplars: fill with distinct candidates
        rest = [i for i in items if i not in chosen]
        chosen += rng.sample(rest, n - len(chosen))
    return [i.attempt for i in chosen]


def select_random(items: Sequence[PoolItem], n: int, rng: random.Random) -> list[Attempt]:
    items = usable(items)
    return [i.attempt for i in rng.sample(items, min(n, len(items)))]


def select_topk(items: Sequence[PoolItem], n: int) -> list[Attempt]:
    items = sorted(usable(items), key=lambda i: i.attempt.speedup, reverse=True)
    return [i.attempt for i in items[:n]]


def select_island(items: Sequence[PoolItem], island: int, n: int, rng: random.Random, tau: float = 1.0,
                  migrate: float = 0.1) -> list[Attempt]:
    items = usable(items)
    own = [i for i in items if i.island is None or i.island == island]
    others = [i for i in items if i.island is not None and i.island != island]
    if others and (not own or rng.random() < migrate):
        best_other = {}
        for i in others:
            if i.island not in best_other or i.attempt.speedup > best_other[i.island].attempt.speedup:
                best_other[i.island] = i
        own.append(rng.choice(list(best_other.values())))
    return select_bucket(own, n, rng, tau)


def select_exemplars(method: str, items: Sequence[PoolItem], n: int, rng: random.Random, *, tau: float = 1.0,
                     island: int = 0, migrate: float = 0.1) -> list[Attempt]:
    """The exemplars for one prompt, by ``method`` (one of ``METHODS``)."""
    if method == "bucket":
        return select_bucket(items, n, rng, tau)
    if method == "random":
        return select_random(items, n, rng)
    if method == "topk":
        return select_topk(items, n)
    if method == "island":
        return select_island(items, island, n, rng, tau, migrate)
    raise ValueError(f"unknown exemplar selection {method!r}: use one of {', '.join(METHODS)}")
