"""``cudal1``: the command-line entry point.

Each ``cmd_*.py`` module beside this file adds its sub-commands through ``register(sub)``
and sets ``func`` on its parser; ``func(args)`` returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from .. import __version__
from .common import UsageError, console, err_console


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit with status 2 and a hint
        err_console.print(f"[red]error:[/red] {message}\n[dim]see: {self.prog} --help[/dim]")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cudal1",
        description="Verified GPU speedups for PyTorch programs: judge, optimize, search, bench, train.",
    )
    parser.add_argument("--version", action="version", version=f"cudal1 {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from . import __path__ as cli_path

    for info in sorted(pkgutil.iter_modules(cli_path), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{__package__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        err_console.print(f"[red]error:[/red] {e}")
        return 2
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]: finished work is kept in the store; rerun to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
