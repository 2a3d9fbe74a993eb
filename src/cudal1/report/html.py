"""A self-contained HTML page of a bench: plots (matplotlib, Agg, embedded as base64 PNG),
statistics in both views against every baseline, and a per-task table with findings."""

from __future__ import annotations

import base64
import datetime as _dt
import io
from dataclasses import dataclass
from pathlib import Path

from ..bench.runner import BenchResult
from ..bench.stats import FAST_P, VIEW_LABELS, bench_statistics, select, status_counts
from .data import ROOFLINE_DEFINITION
from .fit import plural
from .tables import STATUSES, fmt_roof

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Plot:
    title: str
    caption: str
    png: str  # base64


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _x_ticks(axis) -> None:
    """Plain tick labels on a log axis (0.5x, 1x, 10x instead of 10^0)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    axis.set_minor_formatter(NullFormatter())


def _log_limits(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values + [1.0]), max(values + [1.0])
    return lo / 1.5, hi * 1.5


def distribution_figure(speedups: list[float]):
    """A histogram of speedups on a log axis; its y axis counts tasks, so its ticks are whole numbers."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    lo, hi = _log_limits(speedups)
    bins = np.logspace(np.log10(lo), np.log10(hi), max(8, min(40, len(speedups) * 2)))
    ax.hist(speedups, bins=bins, color="#4878a8", edgecolor="white")
    ax.set_xscale("log")
    _x_ticks(ax.xaxis)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.axvline(1.0, color="#b42318", lw=1, ls="--", label="1.0x (eager)")
    med = float(np.median(speedups))
    ax.axvline(med, color="#067647", lw=1, label=f"median {med:.2f}x")
    ax.set_xlabel("speedup over eager (log)")
    ax.set_ylabel("tasks")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Speedup distribution (accepted)", fontsize=10)
    return fig


def make_plots(result: BenchResult) -> tuple[list[Plot], list[str]]:
    """The report's figures; notes say which could not be drawn and why."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    plots, notes = [], []
    accepted = [r for r in result.results if r.accepted]
    speedups = [float(r.verdict.speedup) for r in accepted]
    if not speedups:
        notes.append("No accepted candidates: nothing to plot.")
        return plots, notes

    # 1. distribution on a log axis
    fig = distribution_figure(speedups)
    significant = sum(1 for r in accepted if r.significant("eager"))
    plots.append(Plot("distribution", f"{plural(len(speedups), 'accepted candidate')}, {significant} significantly "
                      "faster than eager (95% interval above 1.0); dashed: eager.", _png(fig)))

    # 2. per-level box plots
    levels = sorted({r.level for r in accepted})
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    data = [[float(r.verdict.speedup) for r in accepted if r.level == lv] for lv in levels]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(levels) + 1), [f"level {lv}\n(n={len(d)})" for lv, d in zip(levels, data)])
    for i, d in enumerate(data, 1):
        ax.scatter(np.full(len(d), i) + np.linspace(-0.08, 0.08, len(d)), d, s=10, color="#4878a8", alpha=0.6, zorder=3)
    ax.set_yscale("log")
    _x_ticks(ax.yaxis)
    ax.axhline(1.0, color="#b42318", lw=1, ls="--")
    ax.set_ylabel("speedup over eager (log)")
    ax.set_title("Per level (accepted)", fontsize=10)
    plots.append(Plot("levels", "Box: quartiles and median; dots: tasks.", _png(fig)))

    # 3. candidate vs torch.compile
    compiled = [r for r in accepted if "compile" in r.baselines and r.baselines["compile"].accepted]
    pairs = [(float(r.baselines["compile"].speedup), float(r.verdict.speedup), r.level) for r in compiled]
    if pairs:
        fig, ax = plt.subplots(figsize=(5.2, 3.8))
        xs, ys, lv = zip(*pairs)
        for level in sorted(set(lv)):
            pts = [(x, y) for x, y, lvl in pairs if lvl == level]
            ax.scatter(*zip(*pts), s=18, label=f"level {level}", alpha=0.8)
        lo, hi = _log_limits(list(xs) + list(ys))
        ax.plot([lo, hi], [lo, hi], color="#667085", lw=1, ls="--", label="equal")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        _x_ticks(ax.xaxis)
        _x_ticks(ax.yaxis)
        ax.set_xlabel("torch.compile speedup over eager (log)")
        ax.set_ylabel("candidate speedup over eager (log)")
        ax.legend(frameon=False, fontsize=8)
        ax.set_title("Candidate vs torch.compile", fontsize=10)
        wins = sum(1 for r in compiled if r.significant("compile"))
        plots.append(Plot("vs-compile", "Above the diagonal: candidate faster than torch.compile. Significantly faster "
                          f"(95% interval of the ratio above 1.0): {wins} of {len(pairs)}.", _png(fig)))
    else:
        notes.append("No torch.compile baseline in this run (bench with --baselines eager,compile for the scatter plot).")
    return plots, notes


def _x(v) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _ms(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _speedup_cell(x: float | None, ci: tuple[float, float] | None) -> dict:
    """A speedup with its 95% interval (``-`` without one); muted when the interval contains 1.0."""
    if x is None:
        return {"text": "-", "ci": "", "cls": "", "title": ""}
    if ci is None:
        return {"text": _x(x), "ci": "-", "cls": "", "title": "no interval (verdict stored before the judge gave one)"}
    ns = ci[0] <= 1.0 <= ci[1]
    return {"text": _x(x), "ci": f"[{ci[0]:.2f}-{ci[1]:.2f}]", "cls": "ns" if ns else "",
            "title": "95% interval contains 1.0: not significant" if ns else "95% interval"}


def _baseline_cell(v) -> dict:
    if not v.accepted:  # why, on hover: the first rejecting finding's message, else the error text
        why = next((f.message for f in v.findings if f.severity == "reject"), "") or (v.details.error or "")
        return {"text": v.verdict, "ci": "", "cls": v.verdict, "title": why[:600]}
    return _speedup_cell(v.speedup, tuple(v.speedup_ci) if v.speedup_ci else None)


def _group_findings(findings) -> list[dict]:
    """One badge per finding id: its severity (reject wins), its messages, how often it fired."""
    grouped: dict[str, dict] = {}
    for f in findings:
        g = grouped.setdefault(f.id, {"id": f.id, "severity": f.severity, "messages": [], "count": 0})
        g["count"] += 1
        if f.severity == "reject":
            g["severity"] = "reject"
        if f.message not in g["messages"]:
            g["messages"].append(f.message)
    for g in grouped.values():
        g["message"] = "\n".join(g["messages"])
    return list(grouped.values())


def render_html(result: BenchResult, roofline: dict[str, float | None] | None = None,
                extra_plots: tuple[Plot, ...] = ()) -> str:
    """The report page as one HTML string (no external files). ``roofline`` ({task_id: fraction},
    `cudal1.report.data.roofline_fractions`; None without measured peaks) fills the "% of
    roofline" column; ``extra_plots`` (e.g. the roofline chart) are shown after the others."""
    import jinja2

    from .. import __version__

    summaries = bench_statistics(result.results, result.baselines)
    against = ["eager"] + [b for b in result.baselines if b != "eager"]
    stat_blocks = [{"against": a, "label": VIEW_LABELS[v], "rows": select(summaries, view=v, against=a)}
                   for a in against for v in ("fallback", "raw")]
    groups: dict[str, list] = {}
    for r in sorted(result.results, key=lambda r: r.level):
        groups.setdefault(f"level{r.level}", []).append(r)
    groups["all"] = result.results
    task_rows = []
    for r in result.results:
        task_rows.append({
            "task_id": r.task_id, "status": r.status,
            "ratios": {a: _speedup_cell(r.ratio(a), r.ratio_interval(a)) for a in against},
            "baseline_cells": {b: _baseline_cell(r.baselines[b]) if b in r.baselines else _speedup_cell(None, None)
                               for b in result.baselines},
            "ref_ms": r.verdict.ref_ms if r.verdict else None,
            "cand_ms": r.verdict.candidate_ms if r.verdict else None,
            "findings": _group_findings(r.verdict.findings) if r.verdict else [],
            "roofline": fmt_roof((roofline or {}).get(r.task_id)),
        })
    plots, plot_notes = make_plots(result)
    plots = plots + list(extra_plots)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    template = env.get_template("report.html.j2")
    return template.render(
        run=result, generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"), version=__version__,
        overall_raw=select(summaries, view="raw", against="eager", group="all")[0],
        overall_fb=select(summaries, view="fallback", against="eager", group="all")[0],
        plots=plots, plot_notes=plot_notes, stat_blocks=stat_blocks, fast_keys=[f"fast_{p:g}" for p in FAST_P],
        statuses=STATUSES, status_rows=[{"group": g, "counts": status_counts(rs)} for g, rs in groups.items()],
        other_baselines=[b for b in result.baselines if b != "eager"], task_rows=task_rows,
        notes=result.notes + result.failures, x=_x, pct=_pct, ms=_ms, plural=plural,
        roofline_peaks=roofline is not None, roofline_definition=ROOFLINE_DEFINITION,
    )


def write_html(result: BenchResult, path: str | Path, **extras) -> Path:
    p = Path(path)
    p.write_text(render_html(result, **extras), encoding="utf-8")
    return p
