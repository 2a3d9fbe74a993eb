"""The "% of roofline" column: roofline time of the task (its FLOPs and fewest bytes on the run
GPU's measured peaks) over the candidate's stored time, in the bench/report tables, the JSON and
the HTML report; "-" where it is unknown. Real tasks, verdicts built as data, peaks saved to a
temporary cache (nothing is timed)."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from cudal1.analysis.roofline import Peaks, roofline_ms, save_peaks, task_work
from cudal1.bench.runner import BenchResult
from cudal1.bench.stats import TaskResult
from cudal1.cli import cmd_bench
from cudal1.judge.verdict import Finding, Verdict
from cudal1.report.data import ROOFLINE_DEFINITION, result_json, roofline_fractions
from cudal1.report.html import render_html
from cudal1.report.tables import fmt_roof, task_table
from cudal1.tasks import resolve_task

PEAKS = Peaks("Test GPU", "2.x", {"fp32": 50e12, "tf32": 400e12, "bf16": 800e12}, 3e12)


def _v(kind: str, candidate_ms: float | None = None) -> Verdict:
    accepted = kind == "accepted"
    return Verdict(kind, accepted, 2.0 if accepted else None, 1.0, candidate_ms, 0.0,
                   (Finding("side-stream", "reject", "work on a side stream"),) if kind == "rejected" else (),
                   "Test GPU", "2.x", speedup_ci=(1.9, 2.1) if accepted else None)


@pytest.fixture
def run() -> BenchResult:
    """GELU at half the roofline (memory bound), the square matmul at the roofline, a rejected
    candidate, and a task the run does not know (no Task: its work cannot be counted)."""
    gelu, mm, soft = (resolve_task(t) for t in ("level1/18_GELU", "level1/1_Square_Matmul", "level1/22_Softmax"))
    rs = [TaskResult(gelu.id, 1, _v("accepted", 2 * roofline_ms(task_work(gelu), PEAKS))),
          TaskResult(mm.id, 1, _v("accepted", roofline_ms(task_work(mm), PEAKS))),
          TaskResult(soft.id, 1, _v("rejected")),
          TaskResult("level1/99_Unknown", 1, _v("accepted", 1.0))]
    return BenchResult(run_id=3, device_name="Test GPU", baselines=("eager",), results=rs,
                       tasks={t.id: t for t in (gelu, mm, soft)})


@pytest.fixture
def cache(tmp_path):
    path = tmp_path / "peaks.json"
    save_peaks(PEAKS, path)
    return path


def test_fractions_from_stored_times_and_task_work(run, cache):
    f = roofline_fractions(run, cache)
    assert f["level1/18_GELU"] == pytest.approx(0.5)
    assert f["level1/1_Square_Matmul"] == pytest.approx(1.0)
    assert f["level1/22_Softmax"] is None  # not accepted
    assert f["level1/99_Unknown"] is None  # no task: work not countable
    other = BenchResult(4, "Other GPU", ("eager",), run.results, run.tasks)
    assert roofline_fractions(other, cache) is None  # no measured peaks for that GPU


def test_cell_format():
    assert [fmt_roof(x) for x in (None, 1.0, 0.374, 0.004, 1.5)] == ["-", "100%", "37%", "0.4%", "150%"]


def _text(renderable, width: int = 200) -> str:
    c = Console(width=width, record=True, color_system=None, file=io.StringIO())
    c.print(renderable)
    return c.export_text()


def _cell(text: str, task_id: str, column: int) -> str:
    line = next(line for line in text.splitlines() if task_id in line)
    return [c.strip() for c in line.split("│")][column]


def test_task_table_column(run, cache):
    text = _text(task_table(run, roofline=roofline_fractions(run, cache)))
    header = [c.strip() for c in next(line for line in text.splitlines() if "┃ task" in line).split("┃")]
    col = header.index("%roof")
    assert _cell(text, "level1/18_GELU", col) == "50%"
    assert _cell(text, "level1/1_Square_Matmul", col) == "100%"
    assert _cell(text, "level1/22_Softmax", col) == "-" and _cell(text, "level1/99_Unknown", col) == "-"
    assert "roofline time / candidate time" in " ".join(text.split())


def test_task_table_without_peaks_says_how_to_get_them(run):
    text = " ".join(_text(task_table(run, roofline=None)).split())
    assert "%roof" in text and "no measured peaks of Test GPU" in text and "cudal1 roofline --measure-peaks" in text


def test_json_has_the_fraction(run, cache):
    d = result_json(run, roofline_fractions(run, cache))
    json.dumps(d)
    by_id = {t["task_id"]: t for t in d["tasks"]}
    assert d["roofline_peaks"] is True
    assert by_id["level1/18_GELU"]["roofline_fraction"] == pytest.approx(0.5)
    assert by_id["level1/22_Softmax"]["roofline_fraction"] is None
    plain = result_json(run)
    assert plain["roofline_peaks"] is False and all(t["roofline_fraction"] is None for t in plain["tasks"])


def test_html_column_and_definition(run, cache):
    html = render_html(run, roofline=roofline_fractions(run, cache))
    assert "<th>% of roofline</th>" in html and "<td>50%</td>" in html and "<td>100%</td>" in html
    definition = ROOFLINE_DEFINITION.split(": ", 1)[1]
    assert "<dt>% of roofline</dt><dd>" + definition.replace("'", "&#39;") in html
    assert "No measured peaks" not in html
    without = render_html(run, roofline=None)
    assert "<th>% of roofline</th>" in without and "No measured peaks of Test GPU" in without


def test_bench_output_shows_the_column_from_the_peaks_cache(run, cache, monkeypatch):
    """``cudal1 bench``/``report`` tables: fractions computed from the cached peaks of the run's GPU."""
    monkeypatch.setenv("CUDAL1_CACHE", str(cache.parent))
    c = Console(width=80, record=True, color_system=None, file=io.StringIO())
    monkeypatch.setattr(cmd_bench, "console", c)
    cmd_bench.render_result(run)
    text = c.export_text()
    assert "%roof" in text
    line = next(line for line in text.splitlines() if "level1/18_GELU" in line)
    assert "50%" in line and "2.00x" in line
