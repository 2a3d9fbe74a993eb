"""Strategy ordering: the prior with an empty store, learned from verdicts, backoff across signatures."""

from __future__ import annotations

from cudal1.policies.rules.ordering import PRIOR, StrategyStats


def test_prior_order_when_nothing_is_known():
    s = StrategyStats()
    names = ["compile-default", "cudagraph", "simplify", "fuse"]
    assert s.order("Linear+add", names) == [n for n in PRIOR if n in names]


def test_measured_speedups_reorder_strategies_for_the_signature():
    s = StrategyStats()
    for _ in range(3):
        s.add("Linear+add", "compile-default", True, 2.0)
        s.add("Linear+add", "fuse", False, None)
    assert s.order("Linear+add", ["fuse", "compile-default"]) == ["compile-default", "fuse"]


def test_other_signatures_inform_through_backoff_but_own_data_wins():
    s = StrategyStats()
    for _ in range(5):
        s.add("conv+relu", "cudagraph", True, 1.8)
    # unseen signature: cudagraph's general record lifts it above the prior's fuse
    assert s.order("Linear+gelu", ["fuse", "cudagraph"]) == ["cudagraph", "fuse"]
    for _ in range(5):
        s.add("Linear+gelu", "cudagraph", True, 0.9)  # slower here: gains 0
        s.add("Linear+gelu", "fuse", True, 1.3)
    assert s.order("Linear+gelu", ["cudagraph", "fuse"]) == ["fuse", "cudagraph"]


def test_failures_lower_a_strategy():
    s = StrategyStats()
    before = s.score("x", "simplify")
    s.add("x", "simplify", False, None)
    assert s.score("x", "simplify") < before
