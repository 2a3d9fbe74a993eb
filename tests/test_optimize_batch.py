"""optimize judges each batch of proposals with one `Judge.evaluate_many` call, stores every
verdict as it arrives, and writes as best only a candidate significantly faster than the
reference (real judge on CPU, quick settings; no exact speedup is asserted)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from cudal1.judge import Judge, JudgeConfig
from cudal1.judge.verdict import Finding, Verdict
from cudal1.policies.base import Proposal
from cudal1.search import Attempt, OptimizeResult, SearchOptions, optimize, write_outputs
from cudal1.search.optimize import faster_than_reference
from cudal1.store import Store
from cudal1.tasks import resolve_task
from cudal1.tasks.contract import Task, source_hash

os.environ.setdefault("OMP_NUM_THREADS", "1")

# The reference computes tanh(x) twenty times over; the fast candidate once.
TASK = """
import torch, torch.nn as nn
N = 128
class Model(nn.Module):
    def forward(self, x):
        out = torch.zeros_like(x)
        for _ in range(20):
            out = out + torch.tanh(x)
        return out
def get_inputs():
    return [torch.randn(N, N)]
def get_init_inputs():
    return []
"""
SAME = """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.zeros_like(x)
        for _ in range(20):
            out = out + torch.tanh(x)
        return out
"""
FAST = """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.tanh(x) * 20.0
"""
WRONG = """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.tanh(x) * 20.0 + 1.0
"""


class _ListPolicy:
    """Proposes its sources once (the whole list in one batch), then nothing."""

    name = "listed"

    def __init__(self, *sources: tuple[str, str]):
        self.sources = sources
        self.contexts = []

    def propose(self, task, context):
        self.contexts.append(context)
        return [] if context.history else [Proposal(source=s, strategy=name) for name, s in self.sources]


def _counting(judge: Judge) -> list[int]:
    """Count `evaluate_many` calls (and their job counts) on the real judge, results untouched."""
    calls: list[int] = []
    real = judge.evaluate_many

    def evaluate_many(jobs, **kwargs):
        calls.append(len(jobs))
        return real(jobs, **kwargs)

    judge.evaluate_many = evaluate_many
    return calls


def _task(tmp_path) -> Task:
    path = tmp_path / "1_Tanh_Twenty.py"
    path.write_text(textwrap.dedent(TASK))
    return resolve_task(path)


@pytest.mark.slow
def test_a_batch_is_judged_by_one_evaluate_many_and_stored(tmp_path, judge_cache):
    task = _task(tmp_path)
    config = JudgeConfig.quick(cache_dir=judge_cache)
    judge = Judge("cpu", config)
    calls = _counting(judge)
    store = Store(tmp_path / "db.sqlite")
    policy = _ListPolicy(("same", SAME), ("fast", FAST), ("wrong", WRONG))
    options = SearchOptions(device="cpu", budget=3, out_dir=str(tmp_path / "out"))
    messages: list[str] = []
    result = optimize(task, policy, options, store=store, judge_config=config, judge=judge, progress=messages.append)

    assert calls == [3]  # (a) the whole batch in one call
    assert [t.strategy for t in result.tried] == ["same", "fast", "wrong"]
    assert result.tried[2].verdict.verdict == "incorrect"
    assert result.stop_reason == "budget"
    assert any("judging same" in m for m in messages) and any("judging fast" in m for m in messages)
    # (b) every verdict is in the store, linked to the run
    history = {a.strategy: a.verdict for a in store.history(task.id)}
    assert set(history) == {"same", "fast", "wrong"}
    for t in result.tried:
        assert history[t.strategy].verdict == t.verdict.verdict and history[t.strategy].speedup == t.verdict.speedup
    assert len(store.run_results(result.run_id)) == 3 and store.run(result.run_id).status == "done"
    # (c) only a candidate faster beyond the noise is written, with its interval in the header
    same = result.tried[0]
    written = [p.read_text() for p in (tmp_path / "out").glob("best_*.py")]
    assert all(SAME not in text for text in written) or same.faster
    if result.best_path:
        assert result.best.faster and result.best.strategy == "fast"
        assert f"speedup {result.best.verdict.speedup_text()}" in Path(result.best_path).read_text()
    report = json.loads(Path(result.report_path).read_text())
    assert [t["faster_than_reference"] for t in report["tried"]] == [t.faster for t in result.tried]
    assert all("speedup_ci" in t for t in report["tried"])

    # A rerun reuses every stored verdict: nothing reaches the judge.
    again = optimize(task, _ListPolicy(("same", SAME), ("fast", FAST), ("wrong", WRONG)), options, store=store,
                     judge_config=config, judge=judge)
    assert calls == [3] and all(t.reused for t in again.tried)
    assert [(t.verdict.verdict, t.verdict.speedup, t.verdict.finding_ids()) for t in again.tried] == [
        (t.verdict.verdict, t.verdict.speedup, t.verdict.finding_ids()) for t in result.tried]
    assert [t.faster for t in again.tried] == [t.faster for t in result.tried]  # with or without the interval


@pytest.mark.slow
def test_wall_time_stops_a_batch_after_the_verdict_that_spends_it(tmp_path, judge_cache):
    # An evaluation starts worker processes that import torch: far longer than 0.5 s.
    task = _task(tmp_path)
    config = JudgeConfig.quick(cache_dir=judge_cache)
    store = Store(tmp_path / "db.sqlite")
    options = SearchOptions(device="cpu", budget=3, out_dir=str(tmp_path / "out"), wall_time_s=0.5)
    result = optimize(task, _ListPolicy(("wrong", WRONG), ("fast", FAST)), options, store=store, judge_config=config)
    assert [t.strategy for t in result.tried] == ["wrong"] and result.stop_reason == "wall-time"
    assert [a.strategy for a in store.history(task.id)] == ["wrong"]
    # the unjudged candidate was stored before the batch started
    assert store.find_candidate(task.id, source_hash(FAST), "listed") is not None


def _verdict(speedup: float, ci: tuple[float, float] | None, findings: tuple[Finding, ...] = ()) -> Verdict:
    return Verdict("accepted", True, speedup, 1.0, 1.0 / speedup, 0.0, findings, "cpu", "2", speedup_ci=ci)


def _result(tmp_path, *tried: tuple[str, Verdict]) -> OptimizeResult:
    task = Task(id="level1/1_T", level=1, name="T", source=TASK, source_hash=source_hash(TASK))
    return OptimizeResult(task=task, device="cpu", device_name="CPU", policy="listed",
                          tried=[Attempt(source=f"# {name}\n", strategy=name, verdict=v) for name, v in tried])


def test_an_interval_reaching_one_is_not_faster_and_not_written(tmp_path):
    result = write_outputs(_result(tmp_path, ("noisy", _verdict(1.4, (0.95, 1.9)))), tmp_path)
    assert not faster_than_reference(result.tried[0].verdict)
    assert not result.beats_reference and result.best_path is None and result.speedup == 1.0
    assert "not significantly faster" in result.message() and "1.40x [0.95-1.90]" in result.message()
    assert list(tmp_path.glob("best_*.py")) == []
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["best"]["speedup_ci"] == [0.95, 1.9] and report["best"]["faster_than_reference"] is False


def test_a_significant_candidate_beats_a_higher_uncertain_one(tmp_path):
    result = write_outputs(_result(tmp_path, ("noisy", _verdict(1.4, (0.95, 1.9))),
                                   ("steady", _verdict(1.1, (1.05, 1.15)))), tmp_path)
    assert result.best.strategy == "steady" and result.beats_reference and result.speedup == 1.1
    text = Path(result.best_path).read_text()
    assert "# speedup 1.10x [1.05-1.15] (95% interval) over the reference" in text and "# steady" in text
    assert result.message().startswith("Best accepted candidate: steady at 1.10x [1.05-1.15]")


def test_a_verdict_without_interval_falls_back_to_its_point_speedup(tmp_path):
    result = write_outputs(_result(tmp_path, ("old", _verdict(1.2, None))), tmp_path)
    assert result.beats_reference and result.best_path is not None
    assert "(no interval measured)" in Path(result.best_path).read_text()
    slower = write_outputs(_result(tmp_path / "slow", ("old", _verdict(0.9, None))), tmp_path / "slow")
    assert not slower.beats_reference and slower.best_path is None
    # read back from a store that kept the judge's finding but not the interval
    noisy = _verdict(1.2, None, (Finding("speedup-not-significant", "warn", "interval contains 1.0"),))
    stored = write_outputs(_result(tmp_path / "stored", ("noisy", noisy)), tmp_path / "stored")
    assert not stored.beats_reference and stored.best_path is None
