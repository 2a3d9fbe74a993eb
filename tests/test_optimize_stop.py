"""When optimize judges fewer candidates than its budget, it says why (the policy ran out of
proposals, or the wall time did), in the message, report.json and the CLI output. The judge is a
stand-in that accepts every candidate at once: these tests are about the loop's words, not about
measuring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cudal1.cli.main import main
from cudal1.judge.verdict import Verdict
from cudal1.policies.base import Proposal
from cudal1.search import Attempt, OptimizeResult, SearchOptions, optimize
from cudal1.store import Store
from cudal1.tasks import resolve_task

TASK = "level2/6_Gemm_Max_SubtractMean_GELU"  # the rules policy has one rewrite for it: simplify


class _InstantJudge:
    """Accepts each candidate at 2x [1.9-2.1] without running it."""

    device, device_name = "cpu", "Stand-in CPU"

    def __init__(self, *args, **kwargs):
        self.jobs = 0

    def evaluate_many(self, jobs, build_workers=2, on_result=None):
        verdicts = []
        for j, _ in enumerate(jobs):
            v = Verdict("accepted", True, 2.0, 1.0, 0.5, 0.0, (), "cpu", "2.x", speedup_ci=(1.9, 2.1))
            self.jobs += 1
            if on_result:
                on_result(j, v)
            verdicts.append(v)
        return verdicts


class _OnePolicy:
    name = "listed"

    def propose(self, task, context):
        return [] if context.history else [Proposal(source=task.source + "\nModelNew = Model\n", strategy="alias")]


def test_an_unspent_budget_is_explained(tmp_path):
    task = resolve_task(TASK, size="smoke")
    options = SearchOptions(device="cpu", size="smoke", budget=4, out_dir=str(tmp_path / "out"))
    result = optimize(task, _OnePolicy(), options, store=Store(tmp_path / "db.sqlite"), judge=_InstantJudge())
    assert len(result.tried) == 1 and result.stop_reason == "no-more-proposals" and result.budget == 4
    assert result.message().startswith("Best accepted candidate: alias")
    assert result.message().endswith("The listed policy had 1 candidate for this task; budget 4 not used up.")
    report = json.loads(Path(result.report_path).read_text())
    assert report["budget"] == 4 and report["stop_reason"] == "no-more-proposals"
    assert "budget 4 not used up" in report["message"]


def test_a_spent_budget_adds_nothing(tmp_path):
    task = resolve_task(TASK, size="smoke")
    options = SearchOptions(device="cpu", size="smoke", budget=1, out_dir=str(tmp_path / "out"))
    result = optimize(task, _OnePolicy(), options, store=Store(tmp_path / "db.sqlite"), judge=_InstantJudge())
    assert result.stop_reason == "budget" and result.stop_text() == ""
    assert "not used up" not in result.message()


@pytest.mark.parametrize("reason, n, expected", [
    ("wall-time", 2, "Stopped when the wall time (--wall-time) ran out, after 2 of budget 8 candidates."),
    ("no-more-proposals", 0, "The rules policy had no applicable rewrite for this task; budget 8 not used up."),
    ("no-more-proposals", 3, "The rules policy had 3 applicable rewrites for this task; budget 8 not used up."),
    ("budget", 8, ""),
])
def test_stop_text(reason, n, expected):
    task = resolve_task(TASK, size="smoke")
    v = Verdict("incorrect", False, None, 1.0, None, 1.0, (), "cpu", "2.x")
    result = OptimizeResult(task=task, device="cpu", device_name="CPU", policy="rules", stop_reason=reason, budget=8,
                            tried=[Attempt(source="# x\n", strategy=f"s{i}", verdict=v) for i in range(n)])
    assert result.stop_text() == expected
    assert result.message().endswith(expected)


def test_cli_says_why_the_budget_was_not_used(tmp_path, monkeypatch, capsys):
    # The real CLI and the real rules policy; only the judge is the stand-in.
    import cudal1.judge

    monkeypatch.setattr(cudal1.judge, "Judge", _InstantJudge)
    monkeypatch.setenv("COLUMNS", "400")
    rc = main(["optimize", TASK, "--size", "smoke", "--device", "cpu", "--budget", "4",
               "--out", str(tmp_path / "out"), "--db", str(tmp_path / "db.sqlite")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "The rules policy had 1 applicable rewrite for this task; budget 4 not used up." in " ".join(out.split())
