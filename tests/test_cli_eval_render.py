"""`cudal1 eval` output: the speedup with its 95% interval, each side's CV, the judge's floor,
and "not significant" when the interval contains 1.0 (verdicts built as data, nothing judged)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from cudal1.cli import cmd_eval
from cudal1.cli.main import main
from cudal1.judge.verdict import VERDICT_FIELDS, Verdict


def _v(speedup=2.31, ci=(2.20, 2.45), ref_cv=0.012, cand_cv=0.034, floor=0.0052, cand_ms=None, verdict="accepted"):
    accepted = verdict == "accepted"
    return Verdict(verdict=verdict, correct=accepted, speedup=speedup if accepted else None, ref_ms=1.0,
                   candidate_ms=cand_ms if cand_ms is not None else (1.0 / speedup if accepted else None),
                   max_abs_error=0.0, findings=(), device="Test GPU", torch="2.x", speedup_ci=ci, ref_cv=ref_cv,
                   candidate_cv=cand_cv, floor_ms=floor)


@pytest.fixture
def rendered(monkeypatch):
    def render(v: Verdict) -> str:
        c = Console(width=200, record=True, color_system=None)
        monkeypatch.setattr(cmd_eval, "console", c)
        cmd_eval.render(v, "level1/1_X")
        return c.export_text()

    return render


def test_eval_shows_interval_cv_and_floor(rendered):
    text = rendered(_v())
    assert "2.31x [2.20-2.45]" in text
    assert "faster beyond the noise" in text and "not significant" not in text
    assert "1.2% / 3.4%" in text  # reference / candidate CV
    assert "0.0052 ms" in text and "empty forward" in text


def test_eval_says_not_significant_when_interval_contains_one(rendered):
    text = rendered(_v(speedup=1.03, ci=(0.97, 1.09)))
    assert "1.03x [0.97-1.09]" in text and "not significant" in text


def test_eval_says_slower_beyond_noise(rendered):
    text = rendered(_v(speedup=0.8, ci=(0.75, 0.85)))
    assert "0.80x [0.75-0.85]" in text and "slower beyond the noise" in text and "not significant" not in text


def test_eval_warns_near_the_floor(rendered):
    assert "within 2x of the floor" in rendered(_v(cand_ms=0.008, floor=0.005))
    assert "within 2x of the floor" not in rendered(_v(cand_ms=0.5, floor=0.005))


def test_eval_old_verdict_without_interval_shows_dashes(rendered):
    text = rendered(_v(ci=None, ref_cv=None, cand_cv=None, floor=None))
    assert "2.31x (no interval)" in text and "- / -" in text
    assert "not significant" not in text


def test_eval_rejected_verdict_has_no_speedup(rendered):
    text = rendered(_v(verdict="incorrect", ci=None))
    assert "not significant" not in text and "beyond the noise" not in text


def test_eval_json_is_the_verdict_json(monkeypatch, tmp_path, capsys):
    import cudal1.judge

    v = _v(speedup=1.02, ci=(0.98, 1.06))
    monkeypatch.setattr(cudal1.judge, "evaluate", lambda task, source, device, config: v)
    cand = tmp_path / "cand.py"
    cand.write_text("class ModelNew: pass\n")
    rc = main(["eval", "level1/1_Square_Matmul", str(cand), "--device", "cpu", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and tuple(out) == VERDICT_FIELDS
    assert out["speedup_ci"] == [0.98, 1.06] and out["floor_ms"] == 0.0052 and out["candidate_cv"] == 0.034
