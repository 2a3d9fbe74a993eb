"""``cudal1 techniques``: technique statistics across the store (usage, synergy, gatekeepers)."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from .common import console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("techniques", help="how often each technique appears among accepted candidates and what it is worth")
    p.add_argument("--run", type=int, default=None, metavar="RUN_ID", help="only this run (default: every run in the store)")
    p.add_argument("--db", default=None, help="the store (SQLite file); default $CUDAL1_DB or ~/.cache/cudal1/cudal1.db")
    p.add_argument("--device", default=None, help="only verdicts measured on this device name")
    p.add_argument("--min-group", type=int, default=2,
                   help="fewest candidates in each of the four groups of a pair for synergy/gatekeeper statistics")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=run)


def _x(v) -> str:
    return f"{v:.2f}x" if v else "-"


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
    t = Table(title=f"Techniques among {stats.accepted} accepted candidates (median speedup with / without, per level)")
    t.add_column("technique")
    t.add_column("count", justify="right")
    t.add_column("share", justify="right")
    for lv in stats.levels:
        t.add_column(f"L{lv} with", justify="right")
        t.add_column(f"L{lv} without", justify="right")
    for u in stats.usage:
        cells = [u.tag, str(u.count), f"{100 * u.share:.0f}%"]
        for lv in stats.levels:
            cells += [_x(u.median_with[lv]), _x(u.median_without[lv])]
        t.add_row(*cells)
    console.print(t)
    if stats.synergies:
        s = Table(title="Synergy: joint effect above the product of separate effects")
        for col in ("A", "B", "A only", "B only", "A and B", "product", "synergy", "n (none/A/B/AB)"):
            s.add_column(col)
        for p in stats.synergies:
            s.add_row(p.a, p.b, _x(p.median["a"] / p.median["none"]), _x(p.median["b"] / p.median["none"]),
                      _x(p.joint), _x(p.product), f"{p.synergy:.2f}", "/".join(str(p.n[k]) for k in ("none", "a", "b", "ab")))
        console.print(s)
    else:
        console.print(f"[dim]no synergy found (pairs need {args.min_group}+ candidates in each group)[/dim]")
    if stats.gatekeepers:
        g = Table(title="Gatekeepers: B helps only when A is present")
        for col in ("A (gate)", "B", "B's effect with A", "B's effect without A"):
            g.add_column(col)
        for k in stats.gatekeepers:
            g.add_row(k.gate, k.tag, _x(k.effect_with), _x(k.effect_without))
        console.print(g)
    return 0
