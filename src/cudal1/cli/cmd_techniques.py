"""``cudal1 techniques``: technique statistics across the store (usage, synergy, gatekeepers)."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from ..report.fit import FitTable, plural
from .common import console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("techniques", help="how often each technique appears among accepted candidates and what it is worth")
    p.add_argument("--run", type=int, default=None, metavar="RUN_ID", help="only this run (default: every run in the store)")
    p.add_argument("--db", default=None, help="the store (SQLite file); default $CUDAL1_DB or ./.cudal1/cudal1.db")
    p.add_argument("--device", default=None, help="only verdicts measured on this device name")
    p.add_argument("--min-group", type=int, default=2,
                   help="fewest candidates in each of the four groups of a pair for synergy/gatekeeper statistics")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=run)


def _x(v) -> str:
    return f"{v:.2f}x" if v else "-"


def _pair(with_: float | None, without: float | None) -> str:
    """Median speedups with / without a technique in one cell: ``2.31 / 1.20``, ``-`` for none."""
    return " / ".join(f"{v:.2f}" if v else "-" for v in (with_, without))


def usage_table(stats) -> Table:
    """Per technique: how many accepted candidates use it and, per level, the median speedup of
    those with it and of those without it."""
    t = FitTable(title=f"Techniques among {plural(stats.accepted, 'accepted candidate')}: median speedup over "
                 "eager with / without each, per level", title_justify="left", optional=("share",))
    t.add_column("technique", no_wrap=True)
    t.add_column("count", justify="right", no_wrap=True)
    t.add_column("share", justify="right", no_wrap=True)
    for lv in stats.levels:
        t.add_column(f"L{lv}\nwith / w/o", justify="right", no_wrap=True)
    for u in stats.usage:
        t.add_row(u.tag, str(u.count), f"{100 * u.share:.0f}%",
                  *(_pair(u.median_with[lv], u.median_without[lv]) for lv in stats.levels))
    return t


def synergy_table(stats) -> Table:
    t = FitTable(title="Synergy: joint effect above the product of separate effects", title_justify="left",
                 caption="effects: median speedup of the group over that of candidates with neither; "
                 "n: candidates with neither / A only / B only / both", caption_justify="left",
                 optional=("product", "B only", "A only"))
    for col in ("A", "B"):
        t.add_column(col, no_wrap=True)
    for col in ("A only", "B only", "A and B", "product", "synergy", "n"):
        t.add_column(col, justify="right", no_wrap=True)
    for p in stats.synergies:
        t.add_row(p.a, p.b, _x(p.median["a"] / p.median["none"]), _x(p.median["b"] / p.median["none"]),
                  _x(p.joint), _x(p.product), f"{p.synergy:.2f}",
                  "/".join(str(p.n[k]) for k in ("none", "a", "b", "ab")))
    return t


def gatekeeper_table(stats) -> Table:
    t = FitTable(title="Gatekeepers: B helps only when A is present", title_justify="left",
                 caption="B's effect (median speedup with B over without it) among candidates with A, and without A",
                 caption_justify="left")
    for col in ("A (gate)", "B"):
        t.add_column(col, no_wrap=True)
    for col in ("with A", "without A"):
        t.add_column(col, justify="right", no_wrap=True)
    for k in stats.gatekeepers:
        t.add_row(k.gate, k.tag, _x(k.effect_with), _x(k.effect_without))
    return t


def run(args: argparse.Namespace) -> int:
    from ..analysis.techniques import collect_results, technique_stats
    from ..store import Store

    store = Store(args.db)
    if args.run is not None and store.run(args.run) is None:
        from .common import UsageError

        raise UsageError(f"no run {args.run} in {store.path} (see the run ids printed by cudal1 bench)")
    results = collect_results(store, run_id=args.run, device=args.device, write_tags=True)
    stats = technique_stats(results, min_group=args.min_group)
    if args.json:
        print(json.dumps(stats.to_json(), indent=2))
        return 0
    if not results:
        console.print("no accepted candidates" + (f" in run {args.run}" if args.run is not None else " in the store"))
        return 0
    console.print(usage_table(stats))
    if stats.synergies:
        console.print(synergy_table(stats))
    else:
        console.print(f"[dim]no synergy found (pairs need {args.min_group}+ candidates in each group)[/dim]")
    if stats.gatekeepers:
        console.print(gatekeeper_table(stats))
    return 0
