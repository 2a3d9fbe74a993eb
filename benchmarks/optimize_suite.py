"""Run the LLM-free optimizer on every task of a suite; per-task wall time, per-level speedup tables, JSON.

Each task: `cudal1.search.optimize` with the rules policy (every candidate judged and stored;
each batch of proposals built in parallel on the CPU, then judged back to back on the device),
plus the torch.compile (default mode) baseline judged by the same judge, so the tables show
speedups over eager AND over torch.compile. A task's result is its best candidate
(`OptimizeResult.best`: the fastest significantly faster one, else the fastest accepted one); it
beats the reference only when its speedup's 95% interval lies above 1.0, and only then is it
written as best_<task>.py.
The per-level tables come from `cudal1.bench.stats`, as in `cudal1 bench`: their "faster"
column counts significant speedups only, while mean/median use the measured point speedups
(fallback view: a failed or slower task counts 1.0x). A per-task table gives the best
candidate's speedup with its interval and the task's wall time (optimize plus the baseline),
then the total.

Flags:
    --suite PATH          builtin (default) or a KernelBench checkout (level1/ level2/ level3/
                          folders, or the repository root with KernelBench/levelN/); task ids
                          are levelN/ID_Name, e.g. level2/12_Gemm_Multiply_LeakyReLU
    --tasks GLOBS         comma-separated globs over task ids (default all): 'level2/*',
                          'level1/19_*,level1/2[0-9]_*'
    --size full|smoke     problem sizes; KernelBench files define no SMOKE sizes, use full
    --budget N            candidates judged per task (default 8)
    --wall-time S         stop a task's search after S seconds (checked before each batch and
                          after each verdict; the compile baseline is judged after it)
    --device D            auto, cpu, cuda or cuda:N
    --quick               quick judge settings (fewer trials and timed calls; CPU smoke runs)
    --no-compile-baseline skip judging the torch.compile baseline
    --allow-lower-precision  also try TF32/bf16 candidates (reported separately)
    --out DIR             per-task outputs (best_<task>.py, report.json) and results.json
    --db PATH             the store (default <out>/cudal1.db); a rerun reuses stored verdicts

results.json: ``tasks`` (per task: the optimize report with ``wall_s`` and every candidate's
``speedup_ci``; ``task_wall_s`` including the baseline; ``best_speedup`` and ``best_speedup_ci``;
``compile_speedup``), ``summaries`` (the tables) and ``total_wall_s``. It is rewritten after every
task (``finished`` false until the last, without the summaries), so a run cut off keeps its tasks.

    python benchmarks/optimize_suite.py --budget 8 --size full --out bench-out            # H100
    python benchmarks/optimize_suite.py --budget 2 --size smoke --tasks 'level2/*' --quick  # CPU smoke
    python benchmarks/optimize_suite.py --suite /path/to/KernelBench --tasks 'level2/*' --budget 8
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=int, default=8, help="candidates judged per task (default 8)")
    ap.add_argument("--wall-time", type=float, default=None, metavar="S",
                    help="stop a task's search after S seconds (default: no limit)")
    ap.add_argument("--size", choices=["full", "smoke"], default="full")
    ap.add_argument("--tasks", default="*", help="comma-separated globs over task ids (default all)")
    ap.add_argument("--suite", default="builtin", help="builtin (default) or a KernelBench checkout")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    ap.add_argument("--out", default="optimize-suite-out", help="folder for per-task outputs and results.json")
    ap.add_argument("--db", default=None, help="store path (default: <out>/cudal1.db)")
    ap.add_argument("--quick", action="store_true", help="quick judge settings (CPU smoke runs)")
    ap.add_argument("--no-compile-baseline", action="store_true", help="skip judging the torch.compile baseline")
    ap.add_argument("--allow-lower-precision", action="store_true")
    args = ap.parse_args(argv)
    if args.wall_time is not None and args.wall_time <= 0:
        ap.error(f"--wall-time must be a positive number of seconds, not {args.wall_time:g}")

    from cudal1.bench.baselines import baseline_source
    from cudal1.bench.stats import TaskResult, bench_statistics
    from cudal1.judge import Judge, JudgeConfig
    from cudal1.policies.rules import RulesPolicy
    from cudal1.report.tables import stats_table
    from cudal1.search import Recording, SearchOptions, judge_and_store, optimize
    from cudal1.store import Store, config_key
    from cudal1.store.records import Candidate
    from cudal1.tasks import load_suite
    from cudal1.tasks.suite_meta import ALGEBRAIC_SHORTCUT_TASKS

    console = Console(stderr=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = Store(args.db or out / "cudal1.db")
    config = (JudgeConfig.quick if args.quick else JudgeConfig)(allow_lower_precision=args.allow_lower_precision)
    judge = Judge(args.device, config)
    key = config_key(config)
    globs = [g.strip() for g in args.tasks.split(",") if g.strip()]
    logging.getLogger("cudal1.tasks.loader").setLevel(logging.ERROR)  # summarised below, not one line per file
    loaded = load_suite(args.suite, size=args.size)
    tasks = [t for t in loaded.tasks if any(fnmatch.fnmatch(t.id, g) for g in globs)]
    skipped = [e for e in loaded.errors if any(fnmatch.fnmatch(f"{Path(e.path).parent.name}/{Path(e.path).stem}", g)
                                               for g in globs)]
    for problem, n in Counter(f"{e.problem}" + (f" ({e.fix})" if e.fix else "") for e in skipped).most_common():
        console.print(f"[yellow]{n} matching task(s) not loaded: {problem}[/yellow]")
    if not tasks:
        console.print(f"[red]no task of {args.suite} loads at size {args.size} and matches {args.tasks!r}[/red]")
        return 2
    policy = RulesPolicy()
    results, rows = [], []
    t_start = time.monotonic()
    for i, task in enumerate(tasks, 1):
        console.rule(f"[{i}/{len(tasks)}] {task.id}")
        t_task = time.monotonic()
        options = SearchOptions(device=judge.device, size=args.size, budget=args.budget,
                                out_dir=str(out / task.id.replace("/", "_")),
                                allow_lower_precision=args.allow_lower_precision, wall_time_s=args.wall_time)
        try:
            r = optimize(task, policy, options, store=store, judge_config=config, judge=judge,
                         progress=lambda m: console.print(f"  {m}"))
        except Exception as e:  # noqa: BLE001 - one broken task must not end the suite
            console.print(f"  [red]optimize failed: {type(e).__name__}: {e}[/red]")
            results.append(TaskResult(task.id, task.level, None))
            rows.append({"task": task.id, "error": f"{type(e).__name__}: {e}",
                         "task_wall_s": round(time.monotonic() - t_task, 2)})
            continue
        baselines = {}
        if not args.no_compile_baseline:
            cand = Candidate(task.id, baseline_source(task, "compile"), policy="baseline", strategy="compile")
            [attempt] = judge_and_store([(task, cand)], lambda jobs, on_result: judge.evaluate_many(jobs, on_result=on_result),
                                        Recording(store, judge.device_name, key),
                                        on_start=lambda todo: todo and console.print("  judging the torch.compile baseline"))
            baselines["compile"] = attempt.verdict
        best = r.best
        results.append(TaskResult(task.id, task.level, best.verdict if best else None, baselines))
        shortcut = task.id in ALGEBRAIC_SHORTCUT_TASKS
        report = r.to_json()
        rows.append({
            **report,
            "tried": [{k: t[k] for k in ("strategy", "verdict", "speedup", "speedup_ci", "faster_than_reference",
                                         "findings")} for t in report["tried"]],
            # the best candidate's speedup and interval, whether or not it beats the reference
            "best_speedup": best.speedup if best else None,
            "best_speedup_ci": list(best.verdict.speedup_ci) if best and best.verdict.speedup_ci else None,
            "best_text": best.verdict.speedup_text() if best else "",
            "task_wall_s": round(time.monotonic() - t_task, 2),
            "compile_speedup": baselines["compile"].speedup if "compile" in baselines else None,
            "algebraic_shortcut_task": shortcut,
            "shortcut_found": shortcut and any(t.verdict.accepted and "simplify" in t.components for t in r.tried),
        })
        console.print(f"  {r.message()} ({rows[-1]['task_wall_s']:.1f} s)")
        # After every task, so a run cut off keeps what it measured; the summaries come at the end.
        (out / "results.json").write_text(json.dumps({"args": vars(args), "device_name": judge.device_name,
                                                      "tasks": rows, "finished": False}, indent=2, default=str))
    total_s = time.monotonic() - t_start
    summaries = bench_statistics(results, ("compile",) if not args.no_compile_baseline else ())
    con = Console(width=None if sys.stdout.isatty() else 200)  # piped: wide enough for the tables
    con.print(task_table(rows, total_s))
    for against in ["eager"] + (["compile"] if not args.no_compile_baseline else []):
        for view in ("fallback", "raw"):
            con.print(stats_table(summaries, view, against))
    shortcuts = [r for r in rows if r.get("algebraic_shortcut_task")]
    found = sum(1 for r in shortcuts if r.get("shortcut_found"))
    con.print(f"algebraic shortcuts found: {found}/{len(shortcuts)}; wall {total_s:.0f} s; device {judge.device_name}")
    payload = {"args": vars(args), "device_name": judge.device_name, "total_wall_s": round(total_s, 2), "tasks": rows,
               "summaries": [s.to_json() for s in summaries],
               "shortcuts_found": found, "shortcut_tasks": len(shortcuts), "finished": True}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    con.print(f"results: {out / 'results.json'}")
    return 0


def task_table(rows: list[dict], total_s: float) -> Table:
    """A row per task: candidates judged, the best one with its speedup and interval, wall times."""
    t = Table(title="per task", title_justify="left", header_style="bold")
    for name, justify in (("task", "left"), ("judged", "right"), ("best", "left"), ("speedup [95% CI]", "right"),
                          ("beats ref", "left"), ("optimize s", "right"), ("task s", "right")):
        t.add_column(name, justify=justify)
    for r in rows:
        if "error" in r:
            t.add_row(r["task"], "-", f"[red]{r['error'][:60]}[/red]", "-", "-", "-", f"{r['task_wall_s']:.1f}")
            continue
        best = r.get("best") or {}
        t.add_row(r["task"], str(len(r["tried"])), best.get("strategy", "-"), r["best_text"] or "-",
                  "yes" if r["beats_reference"] else "no", f"{r['wall_s']:.1f}", f"{r['task_wall_s']:.1f}")
    t.caption = f"total {total_s:.1f} s for {len(rows)} tasks; beats ref: the speedup's 95% interval lies above 1.0"
    return t


if __name__ == "__main__":
    sys.exit(main())
