"""``cudal1 findings [ID] [--json]``: the judge's catalogue of hack patterns and runtime checks.

Without ID: a table of every finding id. With ID: its full documentation (What it does, Why
is this bad?, Example, Use instead), the same text as docs/findings.md.
"""

from __future__ import annotations

import argparse
import json

from ..report.fit import FitTable
from .common import UsageError, console


def register(sub) -> None:
    p = sub.add_parser(
        "findings",
        help="list the judge's finding ids (hack patterns, runtime checks) or explain one",
        description="List every finding id the judge can report, or show the documentation of one "
                    "(like `ruff rule`). The same text is in docs/findings.md.",
    )
    p.add_argument("id", nargs="?", help="a finding id, e.g. side-stream (omit to list all)")
    p.add_argument("--kind", choices=["static", "runtime"], help="list only static patterns or runtime checks")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table or text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..judge.catalogue import get_pattern, load_catalogue

    if args.id:
        try:
            pattern = get_pattern(args.id)
        except KeyError as e:
            raise UsageError(e.args[0]) from None
        if args.json:
            print(json.dumps(pattern.to_json(), indent=2))
        else:
            from rich.markdown import Markdown

            from ..judge.catalogue.docs import render_entry

            text = render_entry(pattern, level=1).split("\n", 1)[1]  # drop the HTML anchor
            console.print(Markdown(text))
        return 0

    patterns = [p for p in load_catalogue().values() if not args.kind or p.kind == args.kind]
    if args.json:
        print(json.dumps([p.to_json() for p in patterns], indent=2))
        return 0
    console.print(findings_table(patterns))
    console.print(f"[dim]{len(patterns)} entries; `cudal1 findings ID` explains one (docs/findings.md has them all)[/dim]")
    return 0


def findings_table(patterns) -> FitTable:
    """One row per finding id: kind, severity, category and name (the name wraps; ids never do)."""
    table = FitTable(title="Findings the judge can report", title_justify="left", optional=("category",))
    for col in ("id", "kind", "severity", "category", "name"):
        table.add_column(col, no_wrap=col != "name")
    for p in patterns:
        sev = "[red]reject[/red]" if p.severity == "reject" else "[yellow]warn[/yellow]"
        table.add_row(p.id, p.kind, sev, p.category, p.name)
    return table
