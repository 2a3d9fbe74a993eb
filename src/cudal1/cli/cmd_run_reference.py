"""``cudal1 run-reference``: run a task's reference program and time it (trusted, in-process)."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from .common import UsageError, add_device_flag, add_size_flag, add_suite_flag, console, device_or_usage_error, size_or_default, task_or_usage_error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run-reference", help="run and time a task's reference program (no candidate)")
    p.add_argument("task", metavar="ID_OR_FILE", help="a task id (level1/1_Square_Matmul, or level1/1) or a .py file")
    add_device_flag(p)
    add_size_flag(p)
    add_suite_flag(p)
    p.add_argument("--iters", type=int, default=20, help="timed calls after warm-up (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    p.add_argument("--seed", type=int, default=0, help="torch seed before building the model and inputs")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..judge.device import device_name
    from ..tasks.runtime import time_reference

    if args.iters < 1 or args.warmup < 0:
        raise UsageError("--iters must be at least 1 and --warmup at least 0")
    device = device_or_usage_error(args.device)
    task = task_or_usage_error(args.task, size=size_or_default(args, args.task), suite=args.suite)
    result = time_reference(task, device=device, iters=args.iters, warmup=args.warmup, seed=args.seed)
    if args.json:
        console.print_json(json.dumps({**result.to_json(), "device_name": device_name(device)}))
        return 0
    table = Table(title=f"{task.id} ({task.size}) on {device_name(device)}", title_justify="left")
    for column in ("outputs", "median ms", "min ms", "calls", "finite"):
        table.add_column(column, justify="right" if "ms" in column or column == "calls" else "left")
    table.add_row(
        ", ".join(result.outputs), f"{result.median_ms:.3f}", f"{result.min_ms:.3f}", str(len(result.times_ms)),
        "yes" if result.finite else "[red]no[/red]",
    )
    console.print(table)
    return 0
