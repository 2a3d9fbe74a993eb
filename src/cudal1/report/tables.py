"""Rich tables of a bench: statistics (both views, every baseline), verdict counts, per task,
and a cross-run (cross-GPU) comparison. Functions return renderables; the CLI prints them.

Every table is a `FitTable`: printed at 80 columns (the width of piped output) it keeps task ids
and numbers whole and leaves out its least important columns, naming them under the table.
"""

from __future__ import annotations

from rich.table import Table

from ..bench.runner import BenchResult
from ..bench.stats import (
    FAST_P, VIEW_LABELS, Summary, TaskResult, bench_statistics, percentile, relative_halfwidth, select, status_counts,
)
from .fit import FitTable

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


# Left out first when a statistics table is too wide (`FitTable`); --json and the HTML have all.
STATS_OPTIONAL = ("fast_0.5", "fast_0.8", "fast_1.5", "fast_0", "p25", "p75", "max", "fast_2", "geomean")


def stats_table(summaries: list[Summary], view: str, against: str = "eager") -> Table:
    """One view against one baseline: a row per level and one for all tasks."""
    title = f"speedup vs {against} - {VIEW_LABELS[view]}"
    t = FitTable(title=title, title_justify="left", header_style="bold", optional=STATS_OPTIONAL)
    t.add_column("group", no_wrap=True)
    for name in ("tasks", "valid", "faster", "mean", "median", "p25", "p75", "max", "geomean"):
        t.add_column(name, justify="right", no_wrap=True)
    for p in FAST_P:
        t.add_column(f"fast_{p:g}", justify="right", no_wrap=True)
    rows = select(summaries, view=view, against=against)
    t.caption = f"faster: > {FASTER_LABEL} and the 95% interval above 1.0 (significant)"
    no_interval = next((s.no_interval for s in rows if s.group == "all"), 0)
    if no_interval:
        t.caption += (f"; {no_interval} accepted without an interval (older verdicts) "
                      f"{'never counts' if no_interval == 1 else 'never count'}")
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


STATUS_HEADERS = {"build_error": "build\nerror", "runtime_error": "runtime\nerror"}


def status_table(result: BenchResult) -> Table:
    """Verdict counts per level. Too wide for the console, verdicts no task got are left out."""
    groups: dict[str, list] = {}
    for r in sorted(result.results, key=lambda r: r.level):
        groups.setdefault(f"level{r.level}", []).append(r)
    groups["all"] = result.results
    total = status_counts(result.results)
    unused = [STATUS_HEADERS.get(s, s) for s in reversed(STATUSES) if s != "accepted" and not total.get(s)]
    t = FitTable(title="verdicts", title_justify="left", header_style="bold", optional=unused)
    t.add_column("group", no_wrap=True)
    for s in STATUSES:
        t.add_column(STATUS_HEADERS.get(s, s), justify="right", style=VERDICT_STYLE[s])  # headers may fold
    for name, rs in groups.items():
        counts = status_counts(rs)
        t.add_row(name, *(str(counts.get(s, 0)) for s in STATUSES))
    return t


ROOF_HEADER = "%roof"
ROOF_CAPTION = ("%roof: roofline time / candidate time, on the measured peaks of the run's device "
                "(100% = at the roofline)")


def fmt_roof(fraction: float | None) -> str:
    """A fraction of the roofline as a cell: ``37%``, ``0.4%`` below 10%, ``-`` when unknown."""
    if fraction is None:
        return "-"
    return f"{100 * fraction:.0f}%" if fraction >= 0.1 else f"{100 * fraction:.1f}%"


def result_cell(r: TaskResult, against: str = "eager") -> str:
    """The speedup against ``against`` when the candidate was accepted, else its verdict (coloured)."""
    if r.accepted:
        return ratio_cell(r, against)
    return f"[{VERDICT_STYLE.get(r.status, '')}]{r.status}[/]"


def task_table(result: BenchResult, limit: int | None = None, roofline: dict[str, float | None] | None = None) -> Table:
    """One row per task: the speedup vs eager (the verdict where it was not accepted), vs each
    baseline, % of roofline and findings. ``roofline`` ({task_id: fraction}, from
    `cudal1.report.data.roofline_fractions`; None without measured peaks for the run's GPU)."""
    others = [b for b in result.baselines if b != "eager"]
    caption = SPEEDUP_CAPTION + "; a verdict in place of a speedup: not accepted\n" + ROOF_CAPTION
    if roofline is None:
        caption += f"; - for all: no measured peaks of {result.device_name} (cudal1 roofline --measure-peaks)"
    optional = [f"vs {b}" for b in reversed(others)]
    optional = [ROOF_HEADER] + optional if roofline is None else optional + [ROOF_HEADER]
    t = FitTable(title="tasks", title_justify="left", header_style="bold", caption=caption, caption_justify="left",
                 optional=optional)
    t.add_column("task", no_wrap=True)
    t.add_column("vs eager", justify="right", no_wrap=True)
    for b in others:
        t.add_column(f"vs {b}", justify="right", no_wrap=True)
    t.add_column(ROOF_HEADER, justify="right", no_wrap=True)
    t.add_column("findings")
    for r in result.results[:limit]:
        findings = ", ".join(sorted({f.id for f in r.verdict.findings})) if r.verdict else ""
        t.add_row(r.task_id, result_cell(r), *(ratio_cell(r, b) for b in others),
                  fmt_roof((roofline or {}).get(r.task_id)), findings)
    return t


def baseline_table(result: BenchResult) -> Table | None:
    """Each baseline's own speedup over eager (the judge's), as a sanity check of the timer; with
    how many of its verdicts were significantly faster or slower than eager ("sig >/<": the 95%
    interval wholly above / below 1.0): for ``eager`` itself both should be near 0."""
    if not result.baselines:
        return None
    t = FitTable(title="baselines (their own speedup over eager, raw)", title_justify="left", header_style="bold",
                 caption="sig >/<: 95% interval wholly above / below 1.0x", caption_justify="left",
                 optional=("min", "max", "mean"))
    t.add_column("baseline", no_wrap=True)
    for name in ("valid", "mean", "median", "min", "max", "sig >/<"):
        t.add_column(name, justify="right", no_wrap=True)
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


def _runs_line(results: list[BenchResult]) -> str:
    return "; ".join(f"run {r.run_id}: {r.device_name}" for r in results)


def compare_tables(results: list[BenchResult]) -> list[Table]:
    """Cross-run (cross-GPU) comparison: per level a row per run (mean/median in both views,
    significant wins), then per task the runs side by side."""
    head = FitTable(title=f"per level (vs eager); {_runs_line(results)}", title_justify="left", header_style="bold",
                    caption=f"faster: > {FASTER_LABEL} and the 95% interval above 1.0 (significant)",
                    caption_justify="left")
    head.add_column("group", no_wrap=True)
    head.add_column("run", justify="right", no_wrap=True)
    head.add_column("mean / median\nwith fallback", justify="right", no_wrap=True)
    head.add_column("mean / median\nraw", justify="right", no_wrap=True)
    head.add_column("faster /\nvalid", justify="right", no_wrap=True)
    stats = {res.run_id: bench_statistics(res.results) for res in results}
    groups = []
    for res in results:
        groups += [s.group for s in stats[res.run_id] if s.group not in groups]
    groups = sorted(set(groups), key=lambda g: (g == "all", g))
    for g in groups:
        for i, res in enumerate(results):
            cells = []
            for view in ("fallback", "raw"):
                s = select(stats[res.run_id], view=view, against="eager", group=g)
                cells.append(f"{fmt_x(s[0].mean)} / {fmt_x(s[0].median)}" if s else "-")
            cells.append(f"{s[0].faster} / {s[0].valid}" if s else "-")  # the same in both views
            head.add_row(g if i == 0 else "", str(res.run_id), *cells, style="bold" if g == "all" else None,
                         end_section=i == len(results) - 1)
    per_task = FitTable(title=f"per task (speedup vs eager); {_runs_line(results)}", title_justify="left",
                        header_style="bold", caption=SPEEDUP_CAPTION, caption_justify="left")
    per_task.add_column("task", no_wrap=True)
    for res in results:
        per_task.add_column(f"run {res.run_id}", justify="right", no_wrap=True)
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
