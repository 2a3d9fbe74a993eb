"""``cudal1 tasks list|show``: what a suite holds."""

from __future__ import annotations

import argparse
import json

from rich.syntax import Syntax

from ..report.fit import FitTable

from .common import UsageError, add_size_flag, add_suite_flag, console, err_console, size_or_default, task_or_usage_error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list the tasks of a suite, or show one task")
    p.set_defaults(func=lambda args: _no_subcommand(p))
    tasks_sub = p.add_subparsers(dest="tasks_command", metavar="ACTION")

    ls = tasks_sub.add_parser("list", help="one row per task: id, inputs, description")
    add_suite_flag(ls)
    ls.add_argument("--level", type=int, default=None, help="only this level (1, 2, 3, ...)")
    add_size_flag(ls)
    ls.add_argument("--json", action="store_true", help="print the tasks and load errors as JSON instead of tables")
    ls.set_defaults(func=run_list)

    show = tasks_sub.add_parser("show", help="a task's source, inputs, hash and path")
    show.add_argument("task", metavar="ID_OR_FILE", help="a task id (level1/1_Square_Matmul, or level1/1) or a .py file")
    add_suite_flag(show)
    add_size_flag(show)
    show.set_defaults(func=run_show)


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_list(args: argparse.Namespace) -> int:
    from ..tasks import load_suite

    if args.level is not None and args.level < 1:
        raise UsageError(f"--level {args.level}: levels start at 1")
    loaded = load_suite(args.suite, size=size_or_default(args), level=args.level)
    if args.json:
        print(json.dumps({
            "suite": str(args.suite), "size": args.size,
            "tasks": [{"id": t.id, "level": t.level, "inputs": list(t.input_specs), "description": t.description,
                       "path": str(t.path), "hash": t.source_hash} for t in loaded.tasks],
            "errors": [{"path": str(e.path), "problem": e.problem, "fix": e.fix} for e in loaded.errors],
        }, indent=1))
        return 0 if loaded.tasks else 1
    by_level: dict[int, list] = {}
    for task in loaded.tasks:
        by_level.setdefault(task.level, []).append(task)
    for level in sorted(by_level):
        table = FitTable(title=f"level {level} ({len(by_level[level])} tasks, {args.size} size)", title_justify="left",
                         optional=("description",))
        table.add_column("id", style="cyan", no_wrap=True)
        table.add_column("inputs")
        table.add_column("description")
        for task in by_level[level]:
            table.add_row(task.id, ", ".join(task.input_specs), task.description)
        console.print(table)
    console.print(f"{len(loaded.tasks)} tasks from {args.suite}")
    _print_load_errors(loaded)
    return 0 if loaded.tasks else 1


def _print_load_errors(loaded) -> None:
    """One line per file that did not load; a problem shared by more than 3 files is one line
    with the count. Python warnings of the task modules are a count only."""
    from ..tasks.loader import TaskSkipped

    groups: dict[tuple[str, str, bool], list] = {}
    for e in loaded.errors:
        groups.setdefault((e.problem, e.fix, isinstance(e, TaskSkipped)), []).append(e)
    for e in loaded.errors:
        key = (e.problem, e.fix, isinstance(e, TaskSkipped))
        same = groups[key]
        if len(same) > 3 and e is not same[0]:
            continue
        line = str(e) if len(same) <= 3 else f"{len(same)} files ({same[0].path}, {same[1].path}, ...): {e.problem}" + (
            f" ({e.fix})" if e.fix else "")
        label = "[yellow]skipped:[/yellow]" if key[2] else "[red]load error:[/red]"
        err_console.print(f"{label} {line}", highlight=False, soft_wrap=True)
    if loaded.warnings:
        err_console.print(f"[dim]{loaded.warnings} Python warning(s) from the task modules, not shown[/dim]",
                          highlight=False)


def run_show(args: argparse.Namespace) -> int:
    task = task_or_usage_error(args.task, size=size_or_default(args, args.task), suite=args.suite)
    console.print(f"[bold cyan]{task.id}[/bold cyan]  {task.description}")
    console.print(f"inputs ({task.size}): {', '.join(task.input_specs) or '-'}")
    console.print(f"hash: {task.source_hash}   path: {task.path}", highlight=False)
    console.print(Syntax(task.source, "python", line_numbers=True))
    return 0
