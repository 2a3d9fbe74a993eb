"""Report rendering: rich tables, JSON and the HTML page, from verdicts constructed as data
(these test arithmetic and rendering; judged end-to-end runs are in test_bench_e2e.py)."""

from __future__ import annotations

import base64
import json
import re

from rich.console import Console

from cudal1.bench.runner import BenchResult
from cudal1.bench.stats import TaskResult
from cudal1.judge.verdict import Finding, Verdict
from cudal1.report.data import compare_json, result_json
from cudal1.report.html import render_html
from cudal1.report.tables import compare_tables, statistics_tables, status_table, task_table


def _v(kind: str, speedup: float | None = None, findings=()) -> Verdict:
    return Verdict(verdict=kind, correct=kind == "accepted", speedup=speedup, ref_ms=2.0,
                   candidate_ms=2.0 / speedup if speedup else None, max_abs_error=0.0, findings=tuple(findings),
                   device="Test GPU", torch="2.x")


def _result(run_id=1, scale=1.0) -> BenchResult:
    rs = [
        TaskResult("level1/1_A", 1, _v("accepted", 2.0 * scale), {"eager": _v("accepted", 1.0), "compile": _v("accepted", 1.6)}),
        TaskResult("level1/2_B", 1, _v("rejected", findings=[Finding("side-stream", "reject", "work on <stream>")]),
                   {"eager": _v("accepted", 1.0), "compile": _v("accepted", 0.8)}),
        TaskResult("level2/3_C", 2, _v("accepted", 0.7 * scale), {"eager": _v("accepted", 1.0), "compile": _v("build_error")}),
        TaskResult("level3/4_D", 3, _v("accepted", 30.0 * scale), {"eager": _v("accepted", 1.0), "compile": _v("accepted", 3.0)}),
        TaskResult("level3/5_E", 3, None, {"eager": _v("accepted", 1.0)}),
    ]
    return BenchResult(run_id=run_id, device_name="Test GPU", baselines=("eager", "compile"), results=rs,
                       notes=["a note"], status="done")


def _text(renderable) -> str:
    c = Console(width=250, record=True, color_system=None)
    c.print(renderable)
    return c.export_text()


def test_rich_tables():
    res = _result()
    tables = statistics_tables(res)
    assert len(tables) == 4  # (eager, compile) x (fallback, raw)
    raw_eager = _text(tables[1])
    assert "raw (accepted only)" in raw_eager
    # raw overall: 2.0, 0.7, 30.0 -> mean 10.90x, median 2.00x, max 30.00x
    all_row = next(line for line in raw_eager.splitlines() if line.strip().startswith("│ all") or " all " in line)
    assert "10.90x" in all_row and "2.00x" in all_row and "30.00x" in all_row
    fb = _text(tables[0])
    # fallback overall: 2, 1, 1, 30, 1 -> mean 7.00x
    assert "7.00x" in fb
    assert "accepted" in _text(status_table(res))
    tt = _text(task_table(res))
    assert "side-stream" in tt and "missing" in tt and "1.25x" in tt  # 2.0 / 1.6 vs compile


def test_result_json_is_serializable_and_complete():
    d = result_json(_result())
    json.dumps(d)
    assert d["missing"] == ["level3/5_E"]
    assert len(d["statistics"]) == 2 * 2 * 4  # against x views x (3 levels + all)
    c = next(t for t in d["tasks"] if t["task_id"] == "level2/3_C")
    assert c["against"]["compile"] == 0.7  # compile failed there: counts as eager


def test_compare():
    a, b = _result(1), _result(2, scale=2.0)
    text = "".join(_text(t) for t in compare_tables([a, b]))
    assert "run 1" in text and "run 2" in text and "60.00x" in text
    d = compare_json([a, b])
    assert d["tasks"][0] == {"task_id": "level1/1_A", "1": {"status": "accepted", "speedup": 2.0},
                             "2": {"status": "accepted", "speedup": 4.0}}
    assert d["levels"]["all"]["2"]["raw"]["mean"] == (4.0 + 1.4 + 60.0) / 3


def test_html_is_self_contained_with_plots_and_tables(tmp_path):
    html = render_html(_result())
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == 3  # distribution, per level, vs compile
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "with fallback" in html and "raw (accepted only)" in html
    assert 'title="work on &lt;stream&gt;"' in html  # finding messages escaped
    assert "level3/5_E" in html and "10.90x" in html


def test_html_without_accepted_or_compile_says_so():
    res = BenchResult(run_id=3, device_name="X", baselines=("eager",),
                      results=[TaskResult("level1/1_A", 1, _v("incorrect"), {"eager": _v("accepted", 1.0)})])
    html = render_html(res)
    assert "No accepted candidates" in html and "data:image/png" not in html


def test_html_groups_repeated_findings():
    f = Finding("input-mutated", "reject", "input 0 changed")
    res = BenchResult(run_id=4, device_name="X", baselines=(),
                      results=[TaskResult("level1/1_A", 1, _v("rejected", findings=[f, f, f]))])
    html = render_html(res)
    assert html.count(">input-mutated") == 1 and "&times;3" in html
