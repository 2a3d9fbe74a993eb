"""Technique statistics on a store the test fills (verdicts constructed as data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cudal1.analysis.techniques import TaggedResult, collect_results, technique_stats
from cudal1.judge.verdict import Verdict
from cudal1.store import Candidate, Store
from cudal1.tasks import resolve_task

C = Path(__file__).parent / "analysis_candidates"
A, B = "cuda-graph", "op-fusion"


def _v(speedup: float | None, verdict: str = "accepted") -> Verdict:
    return Verdict(verdict, verdict == "accepted", speedup, 1.0, 1.0 / speedup if speedup else None, 0.0, (),
                   "Test GPU", "2.x")


def _fill(store: Store) -> tuple[int, dict]:
    t1 = resolve_task("level1/1_Square_Matmul", size="smoke")
    t2 = resolve_task("level2/1_Gemm_BiasAdd_ReLU", size="smoke")
    for t in (t1, t2):
        store.add_task(t)
    run = store.start_run("bench", {"test": 1}, "Test GPU", "2.x")
    ids = {}

    def add(task, name, tags, speedup, verdict="accepted", policy="rules"):
        cid = store.add_candidate(Candidate(task_id=task.id, source=f"# {name}\n", policy=policy, tags=tuple(tags)))
        store.add_verdict(cid, _v(speedup, verdict), run, task=task, config_key="k", device_name="Test GPU")
        ids[name] = cid
        return cid

    # level 1: A alone helps a little, B alone not at all, both together a lot
    add(t1, "none1", [], 1.0)
    add(t1, "none2", ["shared-memory"], 1.0)
    add(t1, "a1", [A], 1.2)
    add(t1, "a2", [A, "shared-memory"], 1.2)
    add(t1, "b1", [B], 1.0)
    add(t1, "b2", [B], 0.95)
    add(t1, "ab1", [A, B], 2.0)
    add(t1, "ab2", [A, B], 2.1)
    # level 2: only A, with a later, better verdict for the same candidate
    cid = add(t2, "a3", [A], 1.1)
    store.add_verdict(cid, _v(1.5), run, task=t2, config_key="k", device_name="Test GPU")
    add(t2, "none3", [], 1.0)
    # not counted: rejected candidates and baselines
    add(t1, "bad", [A, B], None, verdict="rejected")
    store.add_baseline(run, t1, "compile", _v(3.0))
    # stored without tags: tagged from its source when collected
    diag = resolve_task("level1/5_Diag_Matmul", size="smoke")
    store.add_task(diag)
    src = (C / "algebraic_simplification.py").read_text()
    ids["diag"] = store.add_candidate(Candidate(task_id=diag.id, source=src, policy="user"))
    store.add_verdict(ids["diag"], _v(20.0), run, task=diag, config_key="k", device_name="Test GPU")
    store.finish_run(run)
    return run, ids


@pytest.fixture
def filled(tmp_path):
    store = Store(tmp_path / "s.db")
    run, ids = _fill(store)
    yield store, run, ids
    store.close()


def test_collect_results_one_per_accepted_candidate(filled):
    store, run, ids = filled
    results = collect_results(store, run_id=run, write_tags=True)
    by_id = {r.candidate_id: r for r in results}
    assert len(results) == 11  # 10 tagged accepted + the diag one; not the rejected one, not the baseline
    assert ids["bad"] not in by_id
    assert by_id[ids["a3"]].speedup == 1.5 and by_id[ids["a3"]].level == 2  # latest verdict
    assert by_id[ids["diag"]].tags == {"algebraic-simplification"}
    assert store.candidate(ids["diag"]).tags == ("algebraic-simplification",)  # written back
    assert collect_results(store) == results  # every run = this run here
    assert collect_results(store, device="Other GPU") == []


def test_usage_synergy_and_gatekeepers(filled):
    store, run, _ = filled
    stats = technique_stats(collect_results(store, run_id=run), min_group=2)
    usage = {u.tag: u for u in stats.usage}
    assert stats.accepted == 11 and stats.levels == (1, 2)
    assert usage[A].count == 5 and usage[A].share == pytest.approx(5 / 11)
    assert usage[A].median_with[1] == pytest.approx(1.6)  # 1.2, 1.2, 2.0, 2.1
    assert usage[A].median_without[1] == pytest.approx(1.0)  # 1.0, 1.0, 1.0, 0.95
    assert usage[A].median_with[2] == 1.5 and usage[A].median_without[2] == 1.0
    assert usage[B].median_without[2] == pytest.approx(1.25)
    (syn,) = [p for p in stats.synergies if {p.a, p.b} == {A, B}]
    assert syn.joint == pytest.approx(2.05 / 1.0)
    assert syn.product == pytest.approx((1.2 / 1.0) * (0.975 / 1.0))
    assert syn.synergy > 1.5
    gates = {(g.gate, g.tag) for g in stats.gatekeepers}
    assert gates == {(A, B)}  # B helps only with A; A helps on its own


def test_no_synergy_when_effects_multiply():
    rows = []
    for i, (tags, s) in enumerate([((), 1.0), (("x",), 2.0), (("y",), 1.5), (("x", "y"), 3.0)] * 2):
        rows.append(TaggedResult(i, "t", 1, s, frozenset(tags)))
    stats = technique_stats(rows, min_group=2)
    assert stats.synergies == () and stats.gatekeepers == ()
    assert len(stats.pairs) == 1 and stats.pairs[0].synergy == pytest.approx(1.0)


def test_pairs_need_min_group():
    rows = [TaggedResult(0, "t", 1, 1.0, frozenset()), TaggedResult(1, "t", 1, 3.0, frozenset({"x", "y"}))]
    assert technique_stats(rows, min_group=1).pairs == ()  # the "x only"/"y only" groups are empty


def test_cli_json(filled, capsys):
    import json

    from cudal1.cli.main import main

    store, run, _ = filled
    assert main(["techniques", "--db", str(store.path), "--run", str(run), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["accepted"] == 11 and d["gatekeepers"][0]["gate"] == A
    assert main(["techniques", "--db", str(store.path), "--run", "999"]) == 2
