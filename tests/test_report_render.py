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
from cudal1.report.tables import (
    baseline_table, compare_tables, fmt_ci, fmt_speedup, statistics_tables, status_table, task_table,
)


def _v(kind: str, speedup: float | None = None, findings=(), ci=None) -> Verdict:
    return Verdict(verdict=kind, correct=kind == "accepted", speedup=speedup, ref_ms=2.0,
                   candidate_ms=2.0 / speedup if speedup else None, max_abs_error=0.0, findings=tuple(findings),
                   device="Test GPU", torch="2.x", speedup_ci=ci)


def _ci_result() -> BenchResult:
    """Verdicts with intervals: A significantly faster than eager and compile, B faster than eager
    but not beyond the noise, C an old verdict without an interval, D significantly slower."""
    rs = [
        TaskResult("level1/1_A", 1, _v("accepted", 2.31, ci=(2.20, 2.45)),
                   {"eager": _v("accepted", 1.0, ci=(0.97, 1.03)), "compile": _v("accepted", 1.5, ci=(1.45, 1.55))}),
        TaskResult("level1/2_B", 1, _v("accepted", 1.04, ci=(0.96, 1.12)),
                   {"eager": _v("accepted", 1.01, ci=(1.005, 1.02)), "compile": _v("build_error")}),
        TaskResult("level2/3_C", 2, _v("accepted", 3.0), {"eager": _v("accepted", 1.0), "compile": _v("accepted", 1.2)}),
        TaskResult("level2/4_D", 2, _v("accepted", 0.5, ci=(0.45, 0.55)),
                   {"eager": _v("accepted", 1.0, ci=(0.98, 1.02)), "compile": _v("accepted", 1.0, ci=(0.9, 1.1))}),
    ]
    return BenchResult(run_id=5, device_name="Test GPU", baselines=("eager", "compile"), results=rs, status="done")


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
    assert d["tasks"][0] == {"task_id": "level1/1_A", "1": {"status": "accepted", "speedup": 2.0, "speedup_ci": None},
                             "2": {"status": "accepted", "speedup": 4.0, "speedup_ci": None}}
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


def _row(text: str, key: str) -> str:
    return next(line for line in text.splitlines() if key in line)


def test_fmt_speedup_compact_interval():
    assert fmt_speedup(2.31, (2.20, 2.45)) == "2.31x  ±5%"
    assert fmt_speedup(2.0, (1.99, 2.01)) == "2.00x ±0.5%"
    assert fmt_speedup(2.31, None) == "2.31x    -"  # an old verdict: "-" for the interval
    assert fmt_speedup(None, None) == "-" and fmt_ci(1.0, None) == "-"


def test_task_table_shows_intervals_and_old_verdicts_dash():
    text = _text(task_table(_ci_result()))
    assert "2.31x  ±5%" in _row(text, "level1/1_A")
    assert "1.04x  ±8%" in _row(text, "level1/2_B")
    c = _row(text, "level2/3_C")
    assert "3.00x    -" in c and "2.50x    -" in c  # no interval: vs eager and vs compile
    words = " ".join(text.split())  # the caption wraps
    assert "half the 95% interval" in words and "(not significant)" in words and "no interval" in words
    # the rendered width stays what it was plus the interval (well within 80 columns here)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80


def test_task_table_dims_not_significant_speedups():
    c = Console(width=200, record=True, force_terminal=True, color_system="standard")
    c.print(task_table(_ci_result()))
    styled = c.export_text(styles=True)
    b_line = next(line for line in styled.splitlines() if "level1/2_B" in line)
    a_line = next(line for line in styled.splitlines() if "level1/1_A" in line)
    assert "\x1b[2m" in b_line and "\x1b[2m" not in a_line  # dim only where the interval contains 1.0


def test_statistics_count_only_significant_wins():
    res = _ci_result()
    raw_eager = _text(statistics_tables(res)[1])
    # raw vs eager, all: 4 valid; A significant, B not (interval contains 1.0), C no interval, D slower
    cells = [c.strip() for c in _row(raw_eager, "│ all").split("│")]
    assert cells[1:5] == ["all", "4", "4", "1"]
    assert "1 accepted without an interval" in raw_eager and "95% interval above 1.0" in raw_eager
    # against compile: A 2.31/1.5 = 1.54x, interval from both (significant); B's compile failed -> its own
    # interval (not significant); C's compile has no interval; D 0.5x
    raw_compile = _text(statistics_tables(res)[3])
    cells = [c.strip() for c in _row(raw_compile, "│ all").split("│")]
    assert cells[1:5] == ["all", "4", "4", "1"]


def test_baseline_table_counts_significant_baselines():
    text = _text(baseline_table(_ci_result()))
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    eager = [c.strip() for c in _row(text, "│ eager").split("│")]
    assert eager[2] == "4/4" and eager[-2] == "1/0"  # B's eager run: 1.01x [1.005-1.02] above 1.0
    compile_ = [c.strip() for c in _row(text, "│ compile").split("│")]
    assert compile_[2] == "3/4" and compile_[-2] == "1/0"


def test_json_has_intervals_and_significance():
    d = result_json(_ci_result())
    json.dumps(d)
    a = next(t for t in d["tasks"] if t["task_id"] == "level1/1_A")
    assert a["speedup_ci"] == [2.20, 2.45] and a["significant"] is True
    assert a["against_ci"]["compile"][0] > 1.0 and a["baselines"]["compile"]["speedup_ci"] == [1.45, 1.55]
    c = next(t for t in d["tasks"] if t["task_id"] == "level2/3_C")
    assert c["speedup_ci"] is None and c["significant"] is False
    s = next(s for s in d["statistics"] if s["group"] == "all" and s["view"] == "raw" and s["against"] == "eager")
    assert (s["faster"], s["no_interval"]) == (1, 1)
    cmp = compare_json([_ci_result(), _ci_result()])
    assert cmp["levels"]["all"]["5"]["raw"]["faster"] == 1
    assert cmp["tasks"][0]["5"]["speedup_ci"] == [2.20, 2.45]


def test_compare_tables_show_intervals_and_significant_counts():
    text = "".join(_text(t) for t in compare_tables([_ci_result(), _ci_result()]))
    assert "faster /" in text and "valid" in text and "1 / 4" in _row(text, "│ all")
    assert "2.31x  ±5%" in _row(text, "level1/1_A")


def test_html_shows_intervals_and_significance():
    html = render_html(_ci_result())
    assert "2.31x <span class=\"ci\">[2.20-2.45]</span>" in html
    assert 'class="ns" title="95% interval contains 1.0: not significant">1.04x' in html
    assert "3.00x <span class=\"ci\">-</span>" in html  # old verdict: "-" for the interval
    assert "1 accepted result has no interval" in html and "it never counts as faster" in html
    assert "95% interval wholly above 1.0" in html  # the definition of faster
    # the vs-compile caption counts only significant wins: A (1.54x, interval above 1.0); D is below
    assert "Significantly faster (95% interval of the ratio above 1.0): 1 of 3." in html
    assert "1 significantly faster than eager" in html


def test_html_pluralizes_counts():
    one = BenchResult(run_id=6, device_name="X", baselines=("eager",),
                      results=[TaskResult("level1/1_A", 1, _v("accepted", 2.0, ci=(1.9, 2.1)))])
    html = render_html(one)
    assert "1 accepted candidate, 1 significantly faster" in html and "1 accepted candidates" not in html
    assert "4 accepted candidates," in render_html(_ci_result())


def test_histogram_counts_tasks_in_whole_numbers():
    from cudal1.report.html import distribution_figure

    for speedups in ([2.0], [0.8, 1.3, 2.0], [1.1] * 7 + [3.0]):
        fig = distribution_figure(speedups)
        ticks = fig.axes[0].get_yticks()
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_failed_baseline_cell_says_why_on_hover():
    """A baseline the judge did not accept shows its verdict, and its error or rejecting finding
    as the cell's title (a compile-reduce-overhead failure on an H200 said only runtime_error)."""
    from dataclasses import replace

    from cudal1.judge.verdict import VerdictDetails

    crashed = replace(_v("runtime_error", findings=[Finding("crash", "reject", "timed call: overwritten <output>")]),
                      details=VerdictDetails(error="RuntimeError: accessing tensor output of CUDAGraphs"))
    built = replace(_v("build_error"), details=VerdictDetails(error="nvcc: error: bad flag"))
    result = BenchResult(run_id=7, device_name="X", baselines=("eager", "compile-reduce-overhead", "cuda-graph"),
                         results=[TaskResult("level1/1_A", 1, None, {"eager": _v("accepted", 1.0, ci=(0.9, 1.1)),
                                                                      "compile-reduce-overhead": crashed,
                                                                      "cuda-graph": built})])
    html = render_html(result)
    assert 'class="runtime_error" title="timed call: overwritten &lt;output&gt;">runtime_error' in html
    assert 'class="build_error" title="nvcc: error: bad flag">build_error' in html
