"""Which strategy to try first: learned from the judge's verdicts, with a fixed prior.

For each (operator signature, strategy) the store holds how many candidates were judged and
their measured speedups. A strategy's score is its expected gain per judged candidate,
    gain = mean over attempts of max(0, log(speedup))   (a rejected or slower candidate counts 0)
estimated with backoff: the signature's own attempts are shrunk toward the strategy's
attempts on all signatures, which are shrunk toward the prior (the fixed default order), each
with a pseudo-count of ``PSEUDO`` attempts. With an empty store the order is the prior.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field

PSEUDO = 2.0
# The default order (best first). Algebra first (largest measured wins, exact), then fusion
# and graph replay (launch overhead; each fused plan followed by its Triton twin, which applies on
# CUDA only), then compilers, then layout.
PRIOR = (
    "simplify",
    "simplify+fuse+cudagraph",
    "simplify+fuse-triton+cudagraph",
    "simplify+fuse",
    "simplify+fuse-triton",
    "simplify+cudagraph",
    "fuse+cudagraph",
    "fuse-triton+cudagraph",
    "fuse",
    "fuse-triton",
    "cudagraph",
    "compile-default",
    "compile-max-autotune-no-cudagraphs",
    "channels-last+cudagraph",
    "channels-last",
    "compile-reduce-overhead",
    "simplify+compile-default",
    "channels-last+compile-max-autotune-no-cudagraphs",
    "tf32+cudagraph",
    "autocast-bf16+cudagraph",
)


def prior_gain(strategy: str) -> float:
    """A small positive expected gain that decreases along the prior order."""
    try:
        rank = PRIOR.index(strategy)
    except ValueError:
        rank = len(PRIOR)
    return 0.05 * (1.0 - rank / (len(PRIOR) + 1))


@dataclass
class StrategyStats:
    # (signature, strategy) -> [attempts, sum of gains, accepted]
    by_signature: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0.0, 0]))
    by_strategy: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0.0, 0]))

    def add(self, signature: str, strategy: str, accepted: bool, speedup: float | None) -> None:
        gain = max(0.0, math.log(speedup)) if accepted and speedup and speedup > 0 else 0.0
        for table, key in ((self.by_signature, (signature, strategy)), (self.by_strategy, strategy)):
            row = table[key]
            row[0] += 1
            row[1] += gain
            row[2] += int(accepted)

    def score(self, signature: str, strategy: str) -> float:
        n_g, s_g, _ = self.by_strategy.get(strategy, (0, 0.0, 0))
        general = (s_g + PSEUDO * prior_gain(strategy)) / (n_g + PSEUDO)
        n_s, s_s, _ = self.by_signature.get((signature, strategy), (0, 0.0, 0))
        return (s_s + PSEUDO * general) / (n_s + PSEUDO)

    def order(self, signature: str, strategies: list[str]) -> list[str]:
        """``strategies`` best first (ties keep the prior order)."""
        def key(s):
            return (-self.score(signature, s), PRIOR.index(s) if s in PRIOR else len(PRIOR))
        return sorted(strategies, key=key)

    def summary(self, signature: str, strategies: list[str]) -> list[dict]:
        return [
            {"strategy": s, "score": round(self.score(signature, s), 4),
             "attempts_here": self.by_signature.get((signature, s), (0,))[0],
             "attempts_all": self.by_strategy.get(s, (0,))[0]}
            for s in strategies
        ]

    @classmethod
    def from_store(cls, store, device: str | None = None) -> StrategyStats:
        """Every judged candidate of the rules policy in ``store`` (all tasks)."""
        stats = cls()
        if store is None:
            return stats
        rows = store.strategy_outcomes(policy="rules", device=device) if hasattr(store, "strategy_outcomes") else _outcomes_sql(store, device)
        for r in rows:
            stats.add(r["signature"], r["strategy"], r["verdict"] == "accepted", r["speedup"])
        return stats


def _outcomes_sql(store, device: str | None) -> list[dict]:
    """Fallback reading the store's tables directly (candidates carry the signature in meta)."""
    sql = ("SELECT c.strategy AS strategy, c.meta AS meta, v.verdict AS verdict, v.speedup AS speedup"
           " FROM verdicts v JOIN candidates c ON c.id = v.candidate_id WHERE c.policy = 'rules'")
    args: tuple = ()
    if device:
        sql += " AND (v.device_name = ? OR v.device = ?)"
        args = (device, device)
    out = []
    for r in store._query(sql, args):
        try:
            meta = json.loads(r["meta"] or "{}")
        except ValueError:
            meta = {}
        out.append({"signature": meta.get("signature", ""), "strategy": r["strategy"], "verdict": r["verdict"],
                    "speedup": r["speedup"]})
    return out
