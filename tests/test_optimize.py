"""The optimize loop end to end with the real judge on CPU (smoke sizes, quick judge settings)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cudal1.cli.main import main
from cudal1.judge import JudgeConfig
from cudal1.policies.base import Proposal
from cudal1.policies.rules import RulesPolicy
from cudal1.search import SearchOptions, optimize
from cudal1.store import Store
from cudal1.tasks import resolve_task

os.environ.setdefault("OMP_NUM_THREADS", "1")
TASK = "level2/6_Gemm_Max_SubtractMean_GELU"


@pytest.mark.slow
def test_optimize_finds_the_shortcut_writes_it_and_resumes(tmp_path, judge_cache):
    task = resolve_task(TASK, size="smoke")
    store = Store(tmp_path / "db.sqlite")
    options = SearchOptions(device="cpu", size="smoke", budget=1, out_dir=str(tmp_path / "out"))
    config = JudgeConfig.quick(cache_dir=judge_cache)
    messages: list[str] = []
    result = optimize(task, RulesPolicy(), options, store=store, judge_config=config, progress=messages.append)
    assert [t.strategy for t in result.tried] == ["simplify"]
    best = result.best
    assert best is not None and best.verdict.accepted and result.beats_reference
    text = Path(result.best_path).read_text()
    assert text.startswith("# cudal1: ACCEPTED by the judge for level2/6")
    assert f"speedup {best.verdict.speedup_text()}" in text and "class ModelNew(Model)" in text
    report = json.loads(Path(result.report_path).read_text())
    assert report["tried"][0]["verdict"] == "accepted" and report["best"]["strategy"] == "simplify"
    assert any("judging simplify" in m for m in messages)
    # everything is in the store: candidate with its strategy and components, verdict, run
    hist = store.history(task.id)
    assert [a.strategy for a in hist] == ["simplify"] and hist[0].verdict.accepted
    assert store.candidate(hist[0].candidate_id).meta["components"] == ["simplify"]
    assert store.run(result.run_id).status == "done"
    # a rerun reuses the stored verdict instead of judging again
    again = optimize(task, RulesPolicy(), options, store=store, judge_config=config)
    assert again.tried[0].reused and again.best.verdict == best.verdict


class _WrongPolicy:
    """Proposes a candidate that computes the wrong thing."""

    name = "wrong"

    def propose(self, task, context):
        src = task.source.split("def get_inputs")[0] + (
            "\n\nclass ModelNew(Model):\n    def forward(self, x):\n        return super().forward(x) + 1.0\n")
        return [Proposal(source=src, strategy="off-by-one")] if not context.history else []


@pytest.mark.slow
def test_never_writes_a_candidate_the_judge_did_not_accept(tmp_path, judge_cache):
    task = resolve_task(TASK, size="smoke")
    options = SearchOptions(device="cpu", size="smoke", budget=3, out_dir=str(tmp_path / "out"))
    result = optimize(task, _WrongPolicy(), options, store=Store(tmp_path / "db.sqlite"),
                      judge_config=JudgeConfig.quick(cache_dir=judge_cache))
    assert [t.verdict.verdict for t in result.tried] == ["incorrect"]
    assert result.best is None and result.best_path is None and not result.beats_reference
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / "report.json"]
    assert result.message().startswith("Nothing beat the reference")
    assert result.stop_reason == "no-more-proposals"


@pytest.mark.slow
def test_cli_optimize_json(tmp_path, capsys):
    rc = main(["optimize", TASK, "--size", "smoke", "--device", "cpu", "--budget", "1", "--quick",
               "--out", str(tmp_path / "out"), "--db", str(tmp_path / "db.sqlite"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["beats_reference"] and out["tried"][0]["strategy"] == "simplify"
    assert Path(out["best"]["path"]).exists()


def test_cli_rejects_a_bad_budget(tmp_path):
    assert main(["optimize", TASK, "--budget", "0", "--device", "cpu", "--out", str(tmp_path)]) == 2
