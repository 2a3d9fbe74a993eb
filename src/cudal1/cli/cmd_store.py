"""``cudal1 import`` / ``cudal1 export``: CUDA-L1's JSON-lines layout in and out."""

from __future__ import annotations

import argparse

from .cmd_bench import add_db_flag
from .common import UsageError, add_suite_flag, console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn a CUDA-L1 JSON-lines file into a candidates folder")
    p.add_argument("jsonl", metavar="JSONL", help="one row per task: level_id, task_id, ref_code, custom_code, score_*")
    p.add_argument("--out", required=True, metavar="DIR", help="the candidates folder to write (levelN/ID_Name.py)")
    add_suite_flag(p)
    p.set_defaults(func=run_import)

    p = sub.add_parser("export", help="write a bench run as CUDA-L1 JSON lines with our measured speedups")
    p.add_argument("run_id", type=int, metavar="RUN_ID")
    p.add_argument("--jsonl", required=True, metavar="OUT", help="the file to write")
    add_db_flag(p)
    p.set_defaults(func=run_export)


def run_import(args: argparse.Namespace) -> int:
    from ..bench.interchange import EXTRA_DIR, InterchangeError, import_rows, read_rows
    from ..tasks import load_suite

    try:
        rows = read_rows(args.jsonl)
    except InterchangeError as e:
        raise UsageError(str(e)) from None
    suite = load_suite(args.suite)
    if not suite.tasks:
        raise UsageError(f"suite {args.suite!r} has no tasks" + (f": {suite.errors[0]}" if suite.errors else ""))
    s = import_rows(rows, suite.tasks, args.out, origin=args.jsonl)
    for note in s.notes:
        console.print(f"[dim]note: {note}[/dim]")
    for err in s.errors:
        console.print(f"[yellow]skipped:[/yellow] {err}")
    console.print(f"wrote {len(s.written)} candidate(s) to {args.out}; {len(s.without_code)} row(s) without custom_code")
    if s.extra:
        console.print(f"{len(s.extra)} row(s) are not tasks of the suite; their ref_code became tasks of their own: "
                      f"cudal1 bench --suite {args.out}/{EXTRA_DIR}/reference --candidates {args.out}/{EXTRA_DIR}/candidates")
    console.print(f"bench them: cudal1 bench --suite {args.suite} --candidates {args.out}")
    return 0 if not s.errors else 1


def run_export(args: argparse.Namespace) -> int:
    from ..bench.interchange import run_rows, write_rows
    from ..bench.runner import BenchError, load_run
    from ..store import Store

    store = Store(args.db)
    try:
        result = load_run(store, args.run_id)
    except BenchError as e:
        raise UsageError(str(e)) from None
    rows = run_rows(result.results, result.tasks, result.sources)
    write_rows(rows, args.jsonl)
    console.print(f"wrote {len(rows)} row(s) of run {args.run_id} to {args.jsonl}")
    return 0
