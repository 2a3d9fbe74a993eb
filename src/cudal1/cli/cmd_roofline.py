"""``cudal1 roofline``: per-task FLOPs and fewest bytes, device peaks, and how close the best
stored candidates come to the roofline."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from ..report.fit import FitTable
from .common import UsageError, add_device_flag, add_size_flag, add_suite_flag, console, device_or_usage_error, size_or_default, task_or_usage_error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("roofline", help="task work (FLOPs, bytes), measured device peaks, %% of roofline of the best candidates")
    p.add_argument("--task", default=None, help="one task (id or file); default: every task of the suite")
    p.add_argument("--level", type=int, default=None, help="only this level")
    add_suite_flag(p)
    add_size_flag(p)
    add_device_flag(p)
    p.add_argument("--measure-peaks", action="store_true", help="measure the device's peaks again (else the cached ones)")
    p.add_argument("--quick", action="store_true", help="smaller peak measurements (CPU smoke runs)")
    p.add_argument("--db", default=None, help="the store whose best accepted candidates are placed on the roofline")
    p.add_argument("--plot", default=None, metavar="PNG", help="write a roofline chart of the best candidates")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.roofline import bound_by, get_peaks, plot_roofline, roofline_fraction, roofline_ms, roofline_point, task_work
    from ..judge.device import device_name
    from ..tasks import load_suite

    device = device_or_usage_error(args.device)
    if args.task:
        tasks = [task_or_usage_error(args.task, size=size_or_default(args, args.task), suite=args.suite)]
    else:
        loaded = load_suite(args.suite, size=size_or_default(args), level=args.level)
        if not loaded.tasks:
            raise UsageError(f"suite {args.suite!r} has no tasks" + (f": {loaded.errors[0]}" if loaded.errors else ""))
        tasks = loaded.tasks
    with console.status(f"peaks of {device} ..."):
        peaks = get_peaks(device, measure=args.measure_peaks, quick=args.quick)
    store = None
    if args.db is not None or args.plot:
        from ..store import Store

        store = Store(args.db)
    dev_name = device_name(device)
    rows, points = [], []
    for task in tasks:
        try:
            work = task_work(task)
        except Exception as e:  # noqa: BLE001 - one task that cannot be counted is one row
            rows.append({"task": task.id, "error": f"{type(e).__name__}: {e}"})
            continue
        row = {"task": task.id, **work.to_json(), "roofline_ms": roofline_ms(work, peaks), "bound": bound_by(work, peaks)}
        best = store.best(task.id, device=dev_name, size=task.size) if store else None
        if best is not None and best.verdict.candidate_ms:
            row["best_ms"] = best.verdict.candidate_ms
            row["best_speedup"] = best.verdict.speedup
            row["fraction"] = roofline_fraction(work, best.verdict.candidate_ms, peaks)
            points.append(roofline_point(task.id.split("/")[-1][:24], work, best.verdict.candidate_ms, peaks))
        rows.append(row)
    if args.plot:
        path = plot_roofline(points, peaks, args.plot)
        console.print(f"wrote {path} ({len(points)} candidate(s))")
    if args.json:
        print(json.dumps({"peaks": peaks.to_json(), "tasks": rows}, indent=2, default=str))
        return 0
    flops = ", ".join(f"{k} {v / 1e12:.2f} TFLOP/s" for k, v in peaks.flops.items())
    console.print(f"[bold]{peaks.device_name}[/bold] (torch {peaks.torch}): {flops}; memory {peaks.bandwidth / 1e9:.0f} GB/s")
    console.print(roofline_table(rows, args.size))
    for r in rows:
        if "error" in r:
            console.print(f"[red]{r['task']}[/red]: work not countable: {r['error']}", highlight=False)
    return 0


def roofline_table(rows: list[dict], size: str) -> Table:
    """Per task: FLOPs, fewest bytes, intensity, the limiting roof, the roofline time and the best
    stored candidate's time and % of roofline (roofline time / its time)."""
    t = FitTable(title=f"Roofline per task ({size} size)", title_justify="left",
                 caption="roof ms: the least time the measured peaks allow for the task's FLOPs and fewest bytes; "
                 "%roof: roof ms / best ms (100% = at the roofline)", caption_justify="left",
                 optional=("MB", "GFLOP", "FLOP/B", "bound"))
    t.add_column("task", no_wrap=True)
    for col in ("GFLOP", "MB", "FLOP/B", "bound", "roof ms", "best ms", "%roof"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        if "error" in r:  # its message is printed under the table
            t.add_row(r["task"], "-", "-", "-", "[red]error[/red]", "-", "-", "-")
            continue
        frac = r.get("fraction")
        t.add_row(r["task"], f"{r['flops'] / 1e9:.3g}", f"{r['bytes'] / 1e6:.3g}", f"{r['intensity']:.3g}", r["bound"],
                  f"{r['roofline_ms']:.3g}", f"{r['best_ms']:.3g}" if "best_ms" in r else "-",
                  f"{100 * frac:.1f}%" if frac is not None else "-")
    return t
