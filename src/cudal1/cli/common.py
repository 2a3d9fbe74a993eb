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


def add_size_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", default="full", choices=["full", "smoke"], help="problem size: full, or smoke (tiny, for CPUs)")


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
