"""Which graph rewrites the rules policy proposes, per task of a suite (no GPU needed).

For every task: whether FX traces its forward, the ``simplify`` rules that fire (checked
against the reference on small CPU inputs, plus +-inf/NaN inputs, in a child process with a
time limit; see `cudal1.policies.rules.coverage`), and the generated kernels ``fuse`` would
build (counted as proposed; built and checked only with --check-kernels). Wrappers (CUDA
graphs, torch.compile, channels_last) are not graph rewrites and are not counted. Then, per
level, how many tasks get at least one graph rewrite:

- simplify: a simplify candidate was proposed and matched the reference (rewrites that act in
  eval mode only, BatchNorm folding, are counted apart: KernelBench is judged in training mode);
- fuse: a fuse candidate was proposed (checked only with --check-kernels);
- any: either of the two.

Flags:
    --suite PATH      builtin (default) or a KernelBench checkout (level1/ level2/ level3/)
    --tasks GLOBS     comma-separated globs over task ids (default all), e.g. 'level2/*'
    --size S          full (default) or smoke (the built-in suite's small sizes)
    --no-check        do not run candidates (count proposals only)
    --check-kernels   also build and check the fuse candidates (a C++ build each: slow)
    --timeout S       seconds per check (default 60); a check that runs out counts as not applying
    --json PATH       write every task's row and the per-level summary

    python benchmarks/optimize_coverage.py --suite /path/to/KernelBench --json coverage.json
    python benchmarks/optimize_coverage.py --suite builtin --size smoke
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def summarize(rows, unloaded_levels=()) -> dict:
    """Per level (and "all"): tasks (those that did not load count, with no rewrite), traced,
    and tasks with each kind of graph rewrite."""
    by_level: dict = defaultdict(Counter)
    for level in unloaded_levels:
        for key in (f"level{level}", "all"):
            by_level[key]["tasks"] += 1
            by_level[key]["not_loaded"] += 1
    for r in rows:
        for key in (f"level{r.level}", "all"):
            c = by_level[key]
            c["tasks"] += 1
            c["traced"] += r.traced
            c["simplify_proposed"] += bool(r.simplify_rules)
            c["simplify"] += r.simplify_applies
            c["eval_only"] += r.eval_only
            c["fuse"] += r.fuse_applies
            c["any"] += r.graph_rewrite
    return {k: dict(v) for k, v in sorted(by_level.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="builtin")
    ap.add_argument("--tasks", default="*")
    ap.add_argument("--size", choices=["full", "smoke"], default="full")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--check-kernels", action="store_true")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.basicConfig(level=logging.ERROR)

    from cudal1.policies.rules import RulesPolicy
    from cudal1.policies.rules.coverage import task_coverage
    from cudal1.tasks import load_suite

    console = Console(width=max(100, Console().width))
    loaded = load_suite(args.suite, size=args.size)
    globs = [g.strip() for g in args.tasks.split(",") if g.strip()]
    tasks = [t for t in loaded.tasks if any(fnmatch.fnmatch(t.id, g) for g in globs)]
    for e in loaded.errors:
        console.print(f"[yellow]not loaded[/]: {e}")
    policy = RulesPolicy()
    rows = []
    start = time.perf_counter()
    for i, task in enumerate(tasks, 1):
        row = task_coverage(task, check=not args.no_check, check_kernels=args.check_kernels,
                            timeout_s=args.timeout, policy=policy)
        rows.append(row)
        check = row.simplify_check
        note = f"{check.status}" + (f": {check.message}" if check.message else "")
        line = (f"[{i}/{len(tasks)}] {task.id}: simplify {', '.join(row.simplify_rules) or '-'} ({note}); "
                f"fuse {', '.join(row.fuse_kernels) or '-'}" + ("" if row.traced else f"; not traced: {row.trace_error}"))
        console.print(escape(line), highlight=False, soft_wrap=True)

    table = Table(title=f"Graph rewrites of the rules policy: {args.suite} ({time.perf_counter() - start:.0f} s)",
                  caption="tasks include those that did not load; simplify? proposed; simplify: proposed and checked; "
                          "eval-only: BatchNorm folding alone; fuse: generated kernels proposed; any: simplify or fuse")
    for col in ("level", "tasks", "traced", "simplify?", "simplify", "eval-only", "fuse", "any"):
        table.add_column(col, justify="right" if col != "level" else "left")
    unloaded = []  # levels of the files that did not load and that --tasks selects
    for e in loaded.errors:
        path = Path(str(getattr(e, "path", "")))
        pseudo_id = f"{path.parent.name}/{path.stem}"
        if path.parent.name[5:].isdigit() and any(fnmatch.fnmatch(pseudo_id, g) for g in globs):
            unloaded.append(int(path.parent.name[5:]))
    summary = summarize(rows, unloaded)
    for level, c in summary.items():
        n = c["tasks"]
        def pct(k):
            return f"{c.get(k, 0)} ({100 * c.get(k, 0) / n:.0f}%)"
        table.add_row(level, str(n), pct("traced"), pct("simplify_proposed"), pct("simplify"), pct("eval_only"), pct("fuse"), pct("any"))
    console.print(table)
    rules = Counter(r for row in rows if row.simplify_applies for r in row.simplify_rules)
    console.print("simplify rules in checked candidates (tasks): " + ", ".join(f"{k} {v}" for k, v in rules.most_common()))
    bad = [r for r in rows if r.simplify_rules and r.simplify_check.status not in ("ok", "not-run")]
    for r in bad:
        console.print(f"[red]{r.task_id}[/]: simplify {r.simplify_check.status}: {escape(r.simplify_check.message)}", highlight=False)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"suite": args.suite, "tasks": [r.to_json() for r in rows], "summary": summary,
                       "load_errors": [str(e) for e in loaded.errors]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
