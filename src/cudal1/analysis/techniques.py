"""Technique statistics across the store: which techniques appear, what they are worth, which
pairs work together and which need each other.

Over accepted candidates (one verdict per candidate: its latest accepted one in the selection),
with each candidate's technique tags (the store's ``tags`` column; candidates stored without
tags are tagged from their source and verdict and, with ``write_tags``, written back):

- **usage**: per technique, how many accepted candidates have it, and per level the median
  speedup of candidates with it and without it;
- **synergy**: pairs (A, B) whose joint effect exceeds the product of their separate effects:
  ``median(AB)/median(none) > (median(A only)/median(none)) * (median(B only)/median(none))``,
  where "A only" means A without B, "none" neither (other techniques may be present);
- **gatekeepers**: A gatekeeps B when B's effect with A present is above ``1.05``
  (``median(AB)/median(A only)``) but without A at most ``1.0`` (``median(B only)/median(none)``).

Pair statistics need every group to have at least ``min_group`` candidates.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..store.records import RunItem
from .tags import catalogue, tag_candidate


@dataclass(frozen=True)
class TaggedResult:
    """One accepted candidate as the statistics see it."""

    candidate_id: int
    task_id: str
    level: int
    speedup: float
    tags: frozenset[str]


@dataclass(frozen=True)
class TechniqueUsage:
    tag: str
    count: int
    share: float  # of accepted candidates
    median_with: dict  # level -> median speedup (None when no candidate)
    median_without: dict

    def to_json(self) -> dict:
        return {"tag": self.tag, "count": self.count, "share": self.share,
                "median_with": {str(k): v for k, v in self.median_with.items()},
                "median_without": {str(k): v for k, v in self.median_without.items()}}


@dataclass(frozen=True)
class PairEffect:
    a: str
    b: str
    n: dict  # group -> count: none, a, b, ab
    median: dict  # group -> median speedup
    joint: float  # median(AB)/median(none)
    product: float  # (median(A only)/median(none)) * (median(B only)/median(none))

    @property
    def synergy(self) -> float:
        """Joint effect over the product of separate effects (above 1: synergy)."""
        return self.joint / self.product

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "n": self.n, "median": self.median, "joint": self.joint,
                "product": self.product, "synergy": self.synergy}


@dataclass(frozen=True)
class Gatekeeper:
    gate: str  # A: without it, B is useless
    tag: str  # B
    effect_with: float  # median(AB)/median(A only)
    effect_without: float  # median(B only)/median(none)
    n: dict

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TechniqueStats:
    accepted: int
    levels: tuple[int, ...]
    usage: tuple[TechniqueUsage, ...]
    synergies: tuple[PairEffect, ...]
    gatekeepers: tuple[Gatekeeper, ...]
    pairs: tuple[PairEffect, ...] = field(default=(), compare=False)  # every pair with enough data

    def to_json(self) -> dict:
        return {"accepted": self.accepted, "levels": list(self.levels),
                "usage": [u.to_json() for u in self.usage], "synergies": [p.to_json() for p in self.synergies],
                "gatekeepers": [g.to_json() for g in self.gatekeepers]}


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _groups(results: list[TaggedResult], a: str, b: str) -> dict[str, list[float]]:
    g: dict[str, list[float]] = {"none": [], "a": [], "b": [], "ab": []}
    for r in results:
        key = ("a" if a in r.tags else "") + ("b" if b in r.tags else "")
        g[key or "none"].append(r.speedup)
    return g


def technique_stats(results: Iterable[TaggedResult], min_group: int = 1, synergy_margin: float = 1.0,
                    gate_threshold: float = 1.05) -> TechniqueStats:
    """Usage, synergies and gatekeepers over accepted, tagged results (see the module doc)."""
    results = [r for r in results if r.speedup and r.speedup > 0]
    levels = tuple(sorted({r.level for r in results}))
    order = {t: i for i, t in enumerate(catalogue().ids())}
    present = sorted({t for r in results for t in r.tags}, key=lambda t: (order.get(t, 999), t))
    usage = []
    for t in present:
        with_t = [r for r in results if t in r.tags]
        usage.append(TechniqueUsage(
            tag=t, count=len(with_t), share=len(with_t) / len(results),
            median_with={lv: _median([r.speedup for r in with_t if r.level == lv]) for lv in levels},
            median_without={lv: _median([r.speedup for r in results if r.level == lv and t not in r.tags]) for lv in levels},
        ))
    pairs, gates = [], []
    for i, a in enumerate(present):
        for b in present[i + 1:]:
            g = _groups(results, a, b)
            n = {k: len(v) for k, v in g.items()}
            if min(n.values()) < min_group:
                continue
            m = {k: statistics.median(v) for k, v in g.items()}
            eff_a, eff_b, joint = m["a"] / m["none"], m["b"] / m["none"], m["ab"] / m["none"]
            pairs.append(PairEffect(a, b, n, m, joint, eff_a * eff_b))
            for gate, tag, alone in ((a, b, "b"), (b, a, "a")):
                with_gate_only = m["a" if gate == a else "b"]
                effect_with = m["ab"] / with_gate_only
                effect_without = m[alone] / m["none"]
                if effect_with > gate_threshold and effect_without <= 1.0:
                    gates.append(Gatekeeper(gate, tag, effect_with, effect_without, n))
    synergies = sorted((p for p in pairs if p.joint > p.product * synergy_margin), key=lambda p: -p.synergy)
    return TechniqueStats(len(results), levels, tuple(usage), tuple(synergies), tuple(gates), tuple(pairs))


def collect_results(store, run_id: int | None = None, device: str | None = None,
                    write_tags: bool = False) -> list[TaggedResult]:
    """Accepted candidates of one run (``run_id``) or of every run in the store, one per
    candidate (its latest accepted verdict), baselines excluded; ``device`` filters on the
    verdict's device. Candidates without stored tags are tagged now (written back with
    ``write_tags``)."""
    runs = [run_id] if run_id is not None else [r.id for r in store.runs(limit=1_000_000)]
    latest: dict[int, RunItem] = {}
    for rid in runs:
        for item in store.run_results(rid):
            v = item.verdict
            if item.kind != "candidate" or item.policy == "baseline" or not v.accepted:
                continue
            if device and device not in (v.device, item.device_name):
                continue
            prev = latest.get(item.candidate_id)
            if prev is None or item.verdict_id > prev.verdict_id:
                latest[item.candidate_id] = item
    out = []
    for cid, item in sorted(latest.items()):
        cand = store.candidate(cid)
        if cand is None:
            continue
        tags = tuple(cand.tags)
        if not tags:
            task = store.task_by_hash(item.task_hash, item.size) if item.task_hash else store.task(item.task_id)
            tags = tuple(tag_candidate(task, cand.source, item.verdict))
            if write_tags and tags:
                store.set_tags(cid, tags)
        out.append(TaggedResult(cid, item.task_id, item.level, float(item.verdict.speedup), frozenset(tags)))
    return out
