"""Run the LLM-free optimizer on every task of a suite; per-level speedup tables and JSON.

Each task: `cudal1.search.optimize` with the rules policy (every candidate judged and stored),
plus the torch.compile (default mode) baseline judged by the same judge, so the tables show
speedups over eager AND over torch.compile. A task where nothing beat the reference counts
as 1.0x (the user keeps the reference); tables come from `cudal1.bench.stats`, as in
`cudal1 bench`.

    python benchmarks/optimize_suite.py --budget 8 --size full --out bench-out            # H100
    python benchmarks/optimize_suite.py --budget 2 --size smoke --tasks 'level2/*' --quick  # CPU smoke
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path

from rich.console import Console


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=int, default=8, help="candidates judged per task (default 8)")
    ap.add_argument("--size", choices=["full", "smoke"], default="full")
    ap.add_argument("--tasks", default="*", help="comma-separated globs over task ids (default all)")
    ap.add_argument("--suite", default="builtin")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="optimize-suite-out", help="folder for per-task outputs and results.json")
    ap.add_argument("--db", default=None, help="store path (default: <out>/cudal1.db)")
    ap.add_argument("--quick", action="store_true", help="quick judge settings (CPU smoke runs)")
    ap.add_argument("--no-compile-baseline", action="store_true", help="skip judging the torch.compile baseline")
    ap.add_argument("--allow-lower-precision", action="store_true")
    args = ap.parse_args(argv)

    from cudal1.bench.baselines import baseline_source
    from cudal1.bench.stats import TaskResult, bench_statistics
    from cudal1.judge import Judge, JudgeConfig
    from cudal1.policies.rules import RulesPolicy
    from cudal1.report.tables import stats_table
    from cudal1.search import SearchOptions, optimize
    from cudal1.store import Store, config_key
    from cudal1.store.records import Candidate
    from cudal1.tasks import load_suite, source_hash
    from cudal1.tasks.suite_meta import ALGEBRAIC_SHORTCUT_TASKS

    console = Console(stderr=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = Store(args.db or out / "cudal1.db")
    config = (JudgeConfig.quick if args.quick else JudgeConfig)(allow_lower_precision=args.allow_lower_precision)
    judge = Judge(args.device, config)
    key = config_key(config)
    globs = [g.strip() for g in args.tasks.split(",") if g.strip()]
    loaded = load_suite(args.suite, size=args.size)
    tasks = [t for t in loaded.tasks if any(fnmatch.fnmatch(t.id, g) for g in globs)]
    if not tasks:
        console.print(f"[red]no task matches {args.tasks!r}[/red]")
        return 2
    policy = RulesPolicy()
    results, rows = [], []
    t_start = time.monotonic()
    for i, task in enumerate(tasks, 1):
        console.rule(f"[{i}/{len(tasks)}] {task.id}")
        options = SearchOptions(device=judge.device, size=args.size, budget=args.budget,
                                out_dir=str(out / task.id.replace("/", "_")),
                                allow_lower_precision=args.allow_lower_precision)
        try:
            r = optimize(task, policy, options, store=store, judge_config=config, judge=judge,
                         progress=lambda m: console.print(f"  {m}"))
        except Exception as e:  # noqa: BLE001 - one broken task must not end the suite
            console.print(f"  [red]optimize failed: {type(e).__name__}: {e}[/red]")
            results.append(TaskResult(task.id, task.level, None))
            rows.append({"task": task.id, "error": f"{type(e).__name__}: {e}"})
            continue
        baselines = {}
        if not args.no_compile_baseline:
            src = baseline_source(task, "compile")
            vid = store.find_verdict_id(task.source_hash, task.size, source_hash(src), judge.device_name, key)
            if vid is not None:
                v = store.verdict(vid)
            else:
                console.print("  judging the torch.compile baseline")
                v = judge.evaluate(task, src)
                cid = store.add_candidate(Candidate(task_id=task.id, source=src, policy="baseline", strategy="compile"))
                store.add_verdict(cid, v, task=task, config_key=key, device_name=judge.device_name)
            baselines["compile"] = v
        best = r.best
        results.append(TaskResult(task.id, task.level, best.verdict if best else None, baselines))
        shortcut = task.id in ALGEBRAIC_SHORTCUT_TASKS
        rows.append({
            **r.to_json(), "tried": [{k: t[k] for k in ("strategy", "verdict", "speedup", "findings")} for t in r.to_json()["tried"]],
            "compile_speedup": baselines["compile"].speedup if "compile" in baselines else None,
            "algebraic_shortcut_task": shortcut,
            "shortcut_found": shortcut and any(t.verdict.accepted and "simplify" in t.components for t in r.tried),
        })
        console.print(f"  {r.message()}")
    summaries = bench_statistics(results, ("compile",) if not args.no_compile_baseline else ())
    con = Console()
    for against in ["eager"] + (["compile"] if not args.no_compile_baseline else []):
        for view in ("fallback", "raw"):
            con.print(stats_table(summaries, view, against))
    shortcuts = [r for r in rows if r.get("algebraic_shortcut_task")]
    found = sum(1 for r in shortcuts if r.get("shortcut_found"))
    con.print(f"algebraic shortcuts found: {found}/{len(shortcuts)}; wall {time.monotonic() - t_start:.0f} s; "
              f"device {judge.device_name}")
    payload = {"args": vars(args), "device_name": judge.device_name, "tasks": rows,
               "summaries": [s.to_json() for s in summaries],
               "shortcuts_found": found, "shortcut_tasks": len(shortcuts)}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    con.print(f"results: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
