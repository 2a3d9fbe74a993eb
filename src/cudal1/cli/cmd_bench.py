"""``cudal1 bench``: judge a folder of candidates (and baselines) over a suite; statistics tables."""

from __future__ import annotations

import argparse
import json

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..bench.runner import BenchOptions
from ..config_fields import add_flags, flag_help, flag_values
from .common import UsageError, add_device_flag, add_size_flag, add_suite_flag, console, err_console, size_or_default


def add_db_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=None, help="the store (SQLite file); default $CUDAL1_DB, else .cudal1/cudal1.db in this directory")


# The BenchOptions fields `cudal1 bench` sets from flags (name, type, help and default from the field).
BENCH_FLAGS = ("candidates", "gpus", "level", "tasks", "fresh", "build_workers")


def register(sub: argparse._SubParsersAction) -> None:
    from ..bench.baselines import BASELINE_HELP

    p = sub.add_parser("bench", help="judge candidates and baselines over a suite; statistics per level")
    add_suite_flag(p)
    p.add_argument("--baselines", default="eager",
                   help="comma-separated, from: " + "; ".join(f"{k} ({v})" for k, v in BASELINE_HELP.items())
                   + "; '' for none (default: eager)")
    add_device_flag(p)
    add_size_flag(p)
    p.add_argument("--ray", nargs="?", const="auto", default=None, metavar="auto|ADDRESS", help=flag_help(BenchOptions, ["ray"]))
    add_db_flag(p)
    p.add_argument("--quick", action="store_true", help="fewer trials and timed calls (CPU smoke runs)")
    add_flags(p, BenchOptions, BENCH_FLAGS)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.runner import BenchError, run_bench
    from ..judge.config import JudgeConfig
    from ..report.data import result_json, roofline_fractions
    from ..report.tables import fmt_speedup
    from ..store import Store

    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    try:
        options = BenchOptions(suite=args.suite, baselines=baselines, device=args.device, size=size_or_default(args),
                               ray=args.ray, **flag_values(args, BenchOptions, BENCH_FLAGS))
    except BenchError as e:
        raise UsageError(str(e)) from None
    config = JudgeConfig.quick() if args.quick else JudgeConfig()
    store = Store(args.db)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[last]}"), console=err_console, transient=True)
    bar = None

    def on_event(event) -> None:
        nonlocal bar
        if event.phase == "start":
            if event.reused:
                err_console.print(f"[dim]{event.reused} verdict(s) already in the store: reused[/dim]")
            if event.missing:
                shown = ", ".join(event.missing[:5]) + (" ..." if len(event.missing) > 5 else "")
                err_console.print(f"[yellow]{len(event.missing)} selected task(s) have no candidate in "
                                  f"{args.candidates}[/yellow] (reported as missing): {shown}", highlight=False)
            bar = progress.add_task("judging", total=event.total, last="")
        elif bar is not None:
            v = event.verdict
            speed = f" {fmt_speedup(v.speedup, v.speedup_ci)}" if v and v.speedup else ""
            progress.update(bar, advance=1, last=f"{event.task_id} {event.job}: {v.verdict if v else ''}{speed}")

    try:
        with progress:
            result = run_bench(options, store, config=config, progress=on_event)
    except BenchError as e:
        raise UsageError(str(e)) from None
    except ImportError as e:  # an extra (ray) is missing
        raise UsageError(str(e)) from None
    if args.json:
        console.print_json(json.dumps(result_json(result, roofline_fractions(result))))
        return 0 if not result.failures else 1
    render_result(result)
    return 0 if not result.failures else 1


def render_result(result) -> None:
    from ..report.data import roofline_fractions
    from ..report.tables import baseline_table, statistics_tables, status_table, task_table

    for note in result.notes:
        console.print(f"[dim]note: {note}[/dim]")
    if len(result.results) <= 60:
        console.print(task_table(result, roofline=roofline_fractions(result)))
    console.print(status_table(result))
    bt = baseline_table(result)
    if bt is not None:
        console.print(bt)
    for table in statistics_tables(result):
        console.print(table)
    if result.missing:
        console.print(f"[yellow]missing candidates ({len(result.missing)}):[/yellow] " + ", ".join(result.missing))
    for f in result.failures:
        console.print(f"[red]not judged:[/red] {f}")
    console.print(
        f"run [bold]{result.run_id}[/bold] on {result.device_name}: {result.judged} judged, {result.reused} reused "
        f"({result.status}). Report: cudal1 report {result.run_id} --html report.html"
    )
