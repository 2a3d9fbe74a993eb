"""Every table that bench, report, explain, techniques, roofline and findings print, rendered at 80
columns (the width of piped output and of a common terminal): no line wider, every id whole on
one line, no header cut to "g…"; a column left out is named under its table. Tables are built
from real objects (verdicts, catalogue entries, technique statistics, task work); nothing is judged."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console

from cudal1.analysis.ablation import AblationRow
from cudal1.analysis.catalogue import TagHit
from cudal1.analysis.roofline import Peaks, bound_by, roofline_ms, task_work
from cudal1.analysis.techniques import TaggedResult, technique_stats
from cudal1.bench.runner import BenchResult
from cudal1.bench.stats import TaskResult
from cudal1.cli.cmd_explain import ablation_table, tags_table
from cudal1.cli.cmd_findings import findings_table
from cudal1.cli.cmd_roofline import roofline_table
from cudal1.cli.cmd_techniques import gatekeeper_table, synergy_table, usage_table
from cudal1.judge.catalogue import load_catalogue
from cudal1.judge.verdict import Finding, Verdict
from cudal1.report.fit import FitTable
from cudal1.report.tables import (
    baseline_table, compare_tables, statistics_tables, status_table, task_table,
)
from cudal1.tasks import load_suite, resolve_task

WIDTH = 80
BUILTIN_IDS = [t.id for t in load_suite("builtin").tasks]
KINDS = ("accepted", "rejected", "accepted", "runtime_error", "incorrect", "build_error", "timeout", None)
BASELINES = ("eager", "compile", "compile-reduce-overhead", "cuda-graph")


def _v(kind: str, speedup: float | None = None, findings=(), ci=None) -> Verdict:
    return Verdict(verdict=kind, correct=kind == "accepted", speedup=speedup, ref_ms=2.0,
                   candidate_ms=2.0 / speedup if speedup else None, max_abs_error=0.0, findings=tuple(findings),
                   device="NVIDIA H200", torch="2.x", speedup_ci=ci)


def _bench(ids: list[str], run_id: int = 7) -> BenchResult:
    """Every verdict kind, findings on the rejected ones, four baselines, speedups up to 123x."""
    rs = []
    for i, tid in enumerate(ids):
        kind = KINDS[i % len(KINDS)]
        findings = [Finding("side-stream", "reject", "work on a side stream"),
                    Finding("speedup-not-significant", "warn", "interval contains 1.0")] if kind == "rejected" else []
        speedup = (123.45 if i % 3 else 0.93) if kind == "accepted" else None
        v = None if kind is None else _v(kind, speedup, findings, (speedup * 0.9, speedup * 1.1) if speedup else None)
        rs.append(TaskResult(tid, int(tid[5]), v, {"eager": _v("accepted", 1.0, ci=(0.98, 1.02)),
                                                  "compile": _v("accepted", 1.5, ci=(1.4, 1.6)),
                                                  "compile-reduce-overhead": _v("accepted", 1.7, ci=(1.6, 1.8)),
                                                  "cuda-graph": _v("build_error")}))
    return BenchResult(run_id=run_id, device_name="NVIDIA H200", baselines=BASELINES, results=rs)


def render(table, width: int = WIDTH) -> str:
    c = Console(width=width, record=True, color_system=None, file=io.StringIO())
    c.print(table)
    return c.export_text()


def assert_fits(table, text: str, ids=()) -> None:
    """Within the width, ids whole on one line, headers whole or named as left out."""
    assert max(len(line.rstrip()) for line in text.splitlines()) <= WIDTH, text
    assert "…" not in text, text
    for i in ids:
        assert re.search(rf"(^|[\s│┃]){re.escape(i)}([\s│┃]|$)", text, re.M), f"{i} not whole in:\n{text}"
    words = " ".join(text.split())
    left_out = words.split("not shown at 80 columns:", 1)[1] if "not shown at 80 columns:" in words else ""
    for col in table.columns:
        header = str(col.header)
        if header.replace("\n", " ") in left_out:
            continue
        for word in header.split():
            assert re.search(rf"(^|[\s│┃]){re.escape(word)}([\s│┃]|$)", text, re.M), \
                f"header {header!r} cut:\n{text}"


def test_bench_tables_at_80_columns_keep_every_builtin_id_whole():
    res = _bench(BUILTIN_IDS)
    roofline = {r.task_id: (0.37 if r.accepted else None) for r in res.results}
    groups = ["level1", "level2", "level3", "all"]
    for table, ids in ((task_table(res, roofline=roofline), BUILTIN_IDS), (task_table(res), BUILTIN_IDS),
                       (status_table(res), groups), (baseline_table(res), BASELINES),
                       *((t, groups) for t in statistics_tables(res))):
        assert_fits(table, render(table), ids)


def test_task_table_at_80_columns_keeps_speedup_roofline_and_findings():
    ids = [i for i in BUILTIN_IDS if len(i) <= 40]
    res = _bench(ids)
    text = render(task_table(res, roofline={r.task_id: 0.37 for r in res.results if r.accepted}))
    assert "%roof" in text and "37%" in text and "123.45x" in text and "side-stream" in text
    assert "runtime_error" in text  # a verdict in place of the speedup
    # the other baselines go first, named under the table
    assert "not shown at 80 columns: vs cuda-graph, vs compile-reduce-overhead" in " ".join(text.split())


def test_statistics_header_readable_at_80_columns():
    text = render(statistics_tables(_bench(BUILTIN_IDS))[0])
    header = next(line for line in text.splitlines() if "group" in line)
    for name in ("tasks", "valid", "faster", "mean", "median", "geomean", "fast_1"):
        assert re.search(rf"\b{name}\b", header), header
    assert "not shown at 80 columns: fast_0.5, fast_0.8, fast_1.5" in " ".join(text.split())


def test_compare_tables_at_80_columns():
    ids = [i for i in BUILTIN_IDS if len(i) <= 40]
    a, b = _bench(ids, 7), _bench(ids, 8)
    for table in compare_tables([a, b]):
        assert_fits(table, render(table), ids if "per task" in table.title else ())


def test_wide_console_shows_every_column_with_its_border():
    res = _bench(BUILTIN_IDS[:8])
    text = render(task_table(res, roofline={}), width=250)
    assert "not shown" not in text and "┏" in text
    for b in BASELINES[1:]:
        assert f"vs {b}" in text


def test_an_id_too_long_for_any_layout_folds_but_is_never_cut():
    long_id = "level2/99_" + "_".join(["ConvTranspose3d", "GroupNorm", "HardSwish", "ResidualAdd", "LogSumExp"] * 2)
    t = FitTable(optional=("extra",))
    t.add_column("task", no_wrap=True)
    t.add_column("vs eager", justify="right", no_wrap=True)
    t.add_column("extra", no_wrap=True)
    t.add_row(long_id, "2.31x  ±5%", "something")
    text = render(t)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= WIDTH
    joined = "".join(line.split("│")[0].strip() for line in text.splitlines() if "│" in line)
    assert long_id in joined and "2.31x  ±5%" in text and "not shown at 80 columns: extra" in " ".join(text.split())


def test_findings_table_at_80_columns():
    patterns = list(load_catalogue().values())
    table = findings_table(patterns)
    assert_fits(table, render(table), [p.id for p in patterns])


def _tagged() -> list[TaggedResult]:
    """Three levels; algebraic-simplification alone 1.5x, custom-cuda-kernel alone 1.0x, both 3.0x:
    a synergy, and algebraic-simplification gates custom-cuda-kernel."""
    a, b = "custom-cuda-kernel", "algebraic-simplification"
    groups = {(): 1.0, (a,): 1.0, (b,): 1.5, (a, b): 3.0}
    out, n = [], 0
    for level in (1, 2, 3):
        for tags, speedup in groups.items():
            for k in range(2):
                n += 1
                out.append(TaggedResult(n, f"level{level}/{n}_T", level, speedup * (1 + 0.01 * k), frozenset(tags)))
    return out


def test_technique_tables_at_80_columns():
    stats = technique_stats(_tagged(), min_group=1)
    assert stats.synergies and stats.gatekeepers and len(stats.levels) == 3
    tags = ["custom-cuda-kernel", "algebraic-simplification"]
    for table in (usage_table(stats), synergy_table(stats), gatekeeper_table(stats)):
        text = render(table)
        assert_fits(table, text, tags)
    assert "1 accepted candidate:" in render(usage_table(technique_stats(_tagged()[-1:])))


def test_explain_tables_at_80_columns():
    rows = [
        AblationRow("cudnn-benchmark", "switch", "torch.backends.cudnn.benchmark = True set to False", 2.31, 1.10,
                    "accepted", 2.1, False, False),
        AblationRow("lower-precision", "switch", "allow_tf32 = True -> False; autocast(enabled=False)", 2.31, 2.40,
                    "accepted", 0.96, True, False),
        AblationRow("fuse-elementwise", "component", "regenerated from fold-constants", 2.31, None,
                    "runtime_error", None, False, False, note="the variant crashed"),
    ]
    table = ablation_table(rows)
    text = render(table)
    assert_fits(table, text, [r.technique for r in rows])
    assert "HURTS" in text and "runtime_error" in text
    hits = [TagHit("algebraic-simplification", "source", ("x * 0 folded",)),
            TagHit("custom-cuda-kernel", "source+run", ("load_inline(...)", "kernel fused_gelu_kernel launched"))]
    table = tags_table(hits)
    assert_fits(table, render(table), [h.id for h in hits])


def test_roofline_table_at_80_columns():
    peaks = Peaks("Test GPU", "2.x", {"fp32": 50e12, "tf32": 400e12, "bf16": 800e12}, 3e12)
    rows = []
    for tid in ("level1/1_Square_Matmul", "level1/18_GELU", "level2/9_Conv2d_GroupNorm_Min_Clamp_Scale"):
        work = task_work(resolve_task(tid, size="smoke"))
        rows.append({"task": tid, **work.to_json(), "roofline_ms": roofline_ms(work, peaks),
                     "bound": bound_by(work, peaks), "best_ms": 0.5, "fraction": roofline_ms(work, peaks) / 0.5})
    rows.append({"task": "level1/99_Broken", "error": "RuntimeError: no meta kernel"})
    table = roofline_table(rows, "smoke")
    text = render(table)
    assert_fits(table, text, [r["task"] for r in rows])
    assert "%roof" in text and "roof ms" in text


def test_cli_output_piped_at_80_columns():
    """The real command, its stdout a pipe and COLUMNS=80: ids whole, no line wider."""
    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "cudal1.cli.main", "findings"], capture_output=True, text=True,
                         env=env, timeout=120, check=True).stdout
    assert max(len(line) for line in out.splitlines()) <= WIDTH
    for pid in load_catalogue():
        assert re.search(rf"(^|[\s│┃]){re.escape(pid)}([\s│┃]|$)", out, re.M), pid


@pytest.mark.parametrize("width", [60, 100, 140])
def test_other_widths_never_exceed_the_console(width):
    res = _bench(BUILTIN_IDS)
    for table in (task_table(res, roofline={}), status_table(res), *statistics_tables(res)[:2]):
        text = render(table, width)
        assert max(len(line.rstrip()) for line in text.splitlines()) <= width
        assert "…" not in text


def test_tasks_list_piped_at_80_columns_shows_every_id_whole():
    """`COLUMNS=80 cudal1 tasks list`: every built-in id appears whole on its line."""
    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "cudal1.cli.main", "tasks", "list"], capture_output=True, text=True,
                         env=env, timeout=300, check=True).stdout
    assert max(len(line) for line in out.splitlines()) <= WIDTH
    assert "…" not in out
    for tid in BUILTIN_IDS:
        assert re.search(rf"(^|[\s│┃]){re.escape(tid)}([\s│┃]|$)", out, re.M), tid


def test_tasks_list_json_has_every_task():
    out = subprocess.run([sys.executable, "-m", "cudal1.cli.main", "tasks", "list", "--json"], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    data = json.loads(out)
    assert [t["id"] for t in data["tasks"]] == BUILTIN_IDS and data["errors"] == []
