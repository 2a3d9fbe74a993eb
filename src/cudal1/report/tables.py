"""Rich tables of a bench: statistics (both views, every baseline), verdict counts, per task,
and a cross-run (cross-GPU) comparison. Functions return renderables; the CLI prints them."""

from __future__ import annotations

from rich.table import Table

from ..bench.runner import BenchResult
from ..bench.stats import (
    FAST_P, VIEW_LABELS, Summary, TaskResult, bench_statistics, percentile, relative_halfwidth, select, status_counts,
)

FASTER_LABEL = "1.01x"
VERDICT_STYLE = {
    "accepted": "green", "incorrect": "red", "rejected": "bold red", "build_error": "yellow",
    "runtime_error": "yellow", "timeout": "yellow", "missing": "dim",
}
STATUSES = ("accepted", "incorrect", "rejected", "build_error", "runtime_error", "timeout", "missing")


def fmt_x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def fmt_ci(x: float | None, ci: tuple[float, float] | None) -> str:
    """A 95% interval in 4 or 5 columns: ``±5%`` (half its width over the speedup), ``-`` without one."""
    if x is None or ci is None:
        return "-"
    h = 100 * relative_halfwidth(x, ci)
    return f"±{h:.1f}%" if h < 1 else f"±{h:.0f}%"


def fmt_speedup(x: float | None, ci: tuple[float, float] | None) -> str:
    """``2.31x ±5%``; ``2.31x    -`` for a verdict stored without an interval; ``-`` for none."""
    return "-" if x is None else f"{fmt_x(x)} {fmt_ci(x, ci):>4}"


def speedup_cell(x: float | None, ci: tuple[float, float] | None) -> str:
    """`fmt_speedup` as rich markup: dim when the interval contains 1.0 (not significant)."""
    text = fmt_speedup(x, ci)
    return f"[dim]{text}[/dim]" if ci is not None and ci[0] <= 1.0 <= ci[1] else text


def ratio_cell(r: TaskResult, against: str) -> str:
    return speedup_cell(r.ratio(against), r.ratio_interval(against))


SPEEDUP_CAPTION = "±: half the 95% interval; dim: it contains 1.0 (not significant); -: no interval (older verdict)"


def stats_table(summaries: list[Summary], view: str, against: str = "eager") -> Table:
    """One view against one baseline: a row per level and one for all tasks."""
    title = f"speedup vs {against} - {VIEW_LABELS[view]}"
    t = Table(title=title, title_justify="left", header_style="bold")
    t.add_column("group")
    for name in ("tasks", "valid", "faster", "mean", "median", "p25", "p75", "max", "geomean"):
        t.add_column(name, justify="right")
    for p in FAST_P:
        t.add_column(f"fast_{p:g}", justify="right")
    rows = select(summaries, view=view, against=against)
    t.caption = f"faster: > {FASTER_LABEL} and the 95% interval above 1.0 (significant)"
    no_interval = next((s.no_interval for s in rows if s.group == "all"), 0)
    if no_interval:
        t.caption += f"; {no_interval} accepted without an interval (older verdicts) never count"
    t.caption_justify = "left"
    for s in rows:
        t.add_row(
            s.group, str(s.tasks), str(s.valid), str(s.faster), fmt_x(s.mean), fmt_x(s.median), fmt_x(s.p25),
            fmt_x(s.p75), fmt_x(s.max), fmt_x(s.geomean), *(fmt_pct(s.fast_p[f"fast_{p:g}"]) for p in FAST_P),
            style="bold" if s.group == "all" else None,
        )
    return t


def statistics_tables(result: BenchResult) -> list[Table]:
    """Against eager and each baseline, both views."""
    summaries = bench_statistics(result.results, result.baselines)
    against = ["eager"] + [b for b in result.baselines if b != "eager"]
    return [stats_table(summaries, view, a) for a in against for view in ("fallback", "raw")]


def status_table(result: BenchResult) -> Table:
    """Verdict counts per level."""
    t = Table(title="verdicts", title_justify="left", header_style="bold")
    t.add_column("group")
    for s in STATUSES:
        t.add_column(s, justify="right", style=VERDICT_STYLE[s])
    groups: dict[str, list] = {}
    for r in sorted(result.results, key=lambda r: r.level):
        groups.setdefault(f"level{r.level}", []).append(r)
    groups["all"] = result.results
    for name, rs in groups.items():
        counts = status_counts(rs)
        t.add_row(name, *(str(counts.get(s, 0)) for s in STATUSES))
    return t


def task_table(result: BenchResult, limit: int | None = None, roofline: dict | None = None) -> Table:
    """One row per task: verdict, speedup vs eager and vs each baseline, findings; with
    ``roofline`` ({task_id: cell}, from `cudal1.analysis.roofline.bench_roofline`) a "% of roofline" column."""
    t = Table(title="tasks", title_justify="left", header_style="bold", caption=SPEEDUP_CAPTION,
              caption_justify="left")
    t.add_column("task")
    t.add_column("verdict")
    t.add_column("vs eager", justify="right")
    others = [b for b in result.baselines if b != "eager"]
    for b in others:
        t.add_column(f"vs {b}", justify="right")
    if roofline:
        t.add_column("% of roofline", justify="right")
    t.add_column("findings")
    for r in result.results[:limit]:
        findings = ", ".join(sorted({f.id for f in r.verdict.findings})) if r.verdict else ""
        roof = [roofline.get(r.task_id, "-")] if roofline else []
        t.add_row(r.task_id, f"[{VERDICT_STYLE.get(r.status, '')}]{r.status}[/]", ratio_cell(r, "eager"),
                  *(ratio_cell(r, b) for b in others), *roof, findings)
    return t


def baseline_table(result: BenchResult) -> Table | None:
    """Each baseline's own speedup over eager (the judge's), as a sanity check of the timer; with
    how many of its verdicts were significantly faster or slower than eager ("sig >/<": the 95%
    interval wholly above / below 1.0): for ``eager`` itself both should be near 0."""
    if not result.baselines:
        return None
    t = Table(title="baselines (their own speedup over eager, raw)", title_justify="left", header_style="bold",
              caption="sig >/<: 95% interval wholly above / below 1.0x", caption_justify="left")
    t.add_column("baseline")
    for name in ("valid", "mean", "median", "min", "max", "sig >/<"):
        t.add_column(name, justify="right")
    for b in result.baselines:
        verdicts = [r.baselines[b] for r in result.results if b in r.baselines]
        ok = [v for v in verdicts if v.accepted]
        vals = [v.speedup for v in ok]
        faster = sum(1 for v in ok if v.speedup_ci and v.speedup_ci[0] > 1.0)
        slower = sum(1 for v in ok if v.speedup_ci and v.speedup_ci[1] < 1.0)
        t.add_row(b, f"{len(vals)}/{len(verdicts)}", fmt_x(sum(vals) / len(vals) if vals else None),
                  fmt_x(percentile(vals, 50)), fmt_x(min(vals) if vals else None), fmt_x(max(vals) if vals else None),
                  f"{faster}/{slower}")
    return t


def compare_tables(results: list[BenchResult]) -> list[Table]:
    """Cross-run (cross-GPU) comparison: per level mean/median per run, then per task side by side."""
    head = Table(title="per level (vs eager)", title_justify="left", header_style="bold",
                 caption=f"faster: > {FASTER_LABEL} and the 95% interval above 1.0 (significant)", caption_justify="left")
    head.add_column("group")
    for res in results:
        label = f"run {res.run_id}: {res.device_name}"
        head.add_column(f"{label}\nmean / median (fallback)", justify="right")
        head.add_column(f"{label}\nmean / median (raw)", justify="right")
        head.add_column(f"{label}\nfaster / valid", justify="right")
    stats = {res.run_id: bench_statistics(res.results) for res in results}
    groups = []
    for res in results:
        groups += [s.group for s in stats[res.run_id] if s.group not in groups]
    groups = sorted(set(groups), key=lambda g: (g == "all", g))
    for g in groups:
        cells = []
        for res in results:
            for view in ("fallback", "raw"):
                s = select(stats[res.run_id], view=view, against="eager", group=g)
                cells.append(f"{fmt_x(s[0].mean)} / {fmt_x(s[0].median)}" if s else "-")
            cells.append(f"{s[0].faster} / {s[0].valid}" if s else "-")  # the same in both views
        head.add_row(g, *cells, style="bold" if g == "all" else None)
    per_task = Table(title="per task (speedup vs eager)", title_justify="left", header_style="bold",
                     caption=SPEEDUP_CAPTION, caption_justify="left")
    per_task.add_column("task")
    for res in results:
        per_task.add_column(f"run {res.run_id}\n{res.device_name}", justify="right")
    ids: list[str] = []
    for res in results:
        ids += [r.task_id for r in res.results if r.task_id not in ids]
    lookup = {res.run_id: {r.task_id: r for r in res.results} for res in results}
    for tid in ids:
        cells = []
        for res in results:
            r = lookup[res.run_id].get(tid)
            cells.append("" if r is None else (ratio_cell(r, "eager") if r.accepted else f"[dim]{r.status}[/]"))
        per_task.add_row(tid, *cells)
    return [head, per_task]
