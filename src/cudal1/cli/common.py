"""Shared CLI helpers: consoles, common flags, turning library errors into usage errors."""

from __future__ import annotations

import argparse

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def add_device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N")


SIZE_DEFAULT = "smoke on a CPU when the task defines smoke sizes, full on a GPU"


def add_size_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", default=None, choices=["full", "smoke"],
                   help=f"problem size: full, or smoke (tiny, for CPUs); default: {SIZE_DEFAULT}")


def size_or_default(args: argparse.Namespace, ref: str | None = None) -> str:
    """``--size``, or when it was left out the default for the device: smoke on a CPU when the
    task ``ref`` (without one, every task of ``args.suite``, at ``args.level``) defines smoke sizes,
    else full. Sets ``args.size`` and, for a default, prints which size and why as the first line
    (on stderr with ``--json``). Nothing of the tasks runs: only their text is read."""
    if args.size is not None:
        return args.size
    missing, total = _tasks_without_smoke(ref, getattr(args, "suite", "builtin"), getattr(args, "level", None))
    args.size = "full"
    if total and missing:  # no smoke sizes to use: full on any device, and no need to look for a GPU
        why = ("default: the task defines no smoke sizes" if ref is not None or total == 1
               else f"default: {missing} of {total} tasks define no smoke sizes")
    elif getattr(args, "ray", None):
        why = "default with --ray"
    else:
        device = device_or_usage_error(getattr(args, "device", "auto"))
        why = f"default on {device}"
        if device == "cpu" and total:
            args.size = "smoke"
    (err_console if getattr(args, "json", False) else console).print(f"size: {args.size} ({why})", highlight=False)
    return args.size


def _tasks_without_smoke(ref: str | None, suite: str, level: int | None) -> tuple[int, int]:
    """(tasks without SMOKE sizes, tasks) for one task reference or a suite; (0, 0) when none is found."""
    from pathlib import Path

    from ..tasks.contract import defines_smoke
    from ..tasks.loader import TaskLoadError, find_task_file, task_files

    if ref is not None:
        try:
            found = Path(ref) if Path(ref).suffix == ".py" or Path(ref).is_file() else find_task_file(ref, suite)
        except TaskLoadError:
            return 0, 0
        paths = [found if isinstance(found, Path) else found.path]
    else:
        paths = [f.path for f in task_files(suite, level=level)[0]]
    sources = []
    for p in paths:
        try:
            sources.append(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    return sum(not defines_smoke(s) for s in sources), len(sources)


def add_suite_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="builtin", help="'builtin' or a KernelBench checkout (folder with level1/, level2/, ...)")


def device_or_usage_error(device: str) -> str:
    from ..judge.device import resolve_device

    try:
        return resolve_device(device)
    except ValueError as e:
        raise UsageError(str(e)) from None


def task_or_usage_error(ref: str, size: str = "full", suite: str = "builtin"):
    from ..tasks import TaskLoadError, resolve_task

    try:
        return resolve_task(ref, size=size, suite=suite)
    except TaskLoadError as e:
        raise UsageError(str(e)) from None
