"""Noise and honest intervals: the same candidates judged N times, optionally while other
processes keep cores busy.

Two kinds of candidates:
- exact copies of references (``--tasks``; ModelNew = Model): their speedup is 1.0 by
  construction, so their 95% interval (``speedup_ci``) must contain 1.0 every time, on an idle
  machine and on a busy one;
- legitimate faster rewrites (``--legit TASK_FILE=CANDIDATE_FILE``, e.g. the diag-matmul
  rewrite of the adversarial corpus, about 10x on a CPU): their lower bound must stay well
  above 1.

Prints one row per candidate: the speedups, their intervals, each side's CV, and the check.
Exits 1 when an exact copy's interval excluded 1.0 or a legit candidate's lower bound was not
above 1.

    python benchmarks/judge_noise.py --n 5                                       # built-in tasks, exact copies
    python benchmarks/judge_noise.py --device cpu --size smoke --busy 1 \\
        --tasks tests/hacks/tasks/deep_mlp_task.py,tests/hacks/tasks/matmul_task.py \\
        --legit tests/hacks/tasks/diag_matmul_task.py=tests/hacks/legit/algebraic.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cudal1.judge import Judge, JudgeConfig
from cudal1.tasks import load_task_file, resolve_task

from judge_overhead import reference_as_candidate


def load(spec: str, size: str):
    return load_task_file(Path(spec), size=size) if spec.endswith(".py") else resolve_task(spec, size=size)


@contextmanager
def busy_processes(count: int):
    """``count`` processes spinning on a core each, for as long as the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


DEFAULT_TASKS = "level1/1_Square_Matmul,level1/22_Softmax,level2/1,level3/1"  # built-in suite ids


def _row(task, kind: str, busy: int, vs: list) -> dict:
    return {"task": task.id, "kind": kind, "busy": busy,
            "verdicts": [{k: v.to_json()[k] for k in ("verdict", "speedup", "speedup_ci", "ref_cv", "candidate_cv",
                                                      "floor_ms", "ref_ms", "candidate_ms")}
                         | {"findings": v.finding_ids()} for v in vs],
            "median_speedup": statistics.median([v.speedup for v in vs if v.speedup] or [0.0])}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=DEFAULT_TASKS,
                   help="comma-separated task ids or task files, each judged against an exact copy of itself")
    p.add_argument("--legit", action="append", default=[], metavar="TASK=CANDIDATE",
                   help="a task file and a faster candidate file for it (repeatable)")
    p.add_argument("--device", default="auto")
    p.add_argument("--size", default="full")
    p.add_argument("--n", type=int, default=5, help="evaluations per candidate")
    p.add_argument("--busy", type=int, default=0, help="processes kept spinning on a core each while judging")
    p.add_argument("--quick", action="store_true", help="JudgeConfig.quick() (fewer calls: wider intervals)")
    p.add_argument("--json", help="write every verdict's figures here")
    a = p.parse_args()
    base = dict(remeasure_threshold_l1=1e9, remeasure_threshold=1e9)
    jobs = [("copy", load(t, a.size), None) for t in a.tasks.split(",") if t]
    for spec in a.legit:
        task_file, _, cand_file = spec.partition("=")
        if not cand_file:
            p.error(f"--legit {spec!r}: give TASK_FILE=CANDIDATE_FILE")
        jobs.append(("legit", load(task_file, a.size), Path(cand_file).read_text()))
    rows, failed = [], 0
    with busy_processes(a.busy):
        # Started inside: a judge that starts on a busy machine sees it (CPU threads, pace).
        judge = Judge(a.device, JudgeConfig.quick(**base) if a.quick else JudgeConfig(**base))
        title = (f"speedup intervals, {a.n} evaluations each, {a.busy} busy process(es) ({judge.device_name}, "
                 f"torch {judge.torch_version})")
        table = Table(title=title)
        for col in ("task", "kind", "speedups [95% interval]", "CV ref/cand", "check"):
            table.add_column(col)
        for kind, task, source in jobs:
            src = source or reference_as_candidate(task)
            build = judge.build(task, src)
            vs = []
            for i in range(a.n):
                vs.append(judge.evaluate(task, src, prebuilt=build))
                print(f"{task.id} {kind} [{i + 1}/{a.n}]: {vs[-1].speedup_text() or vs[-1].verdict} "
                      f"({vs[-1].eval_s or 0:.1f} s)", flush=True)
                if a.json:  # after every evaluation: a run cut off keeps what it measured
                    Path(a.json).write_text(json.dumps(rows + [_row(task, kind, a.busy, vs)], indent=1))
            cis = [v.speedup_ci for v in vs]
            if kind == "copy":
                bad = sum(1 for ci in cis if ci is None or not ci[0] <= 1.0 <= ci[1])
                check = "ok" if not bad else f"{bad} exclude 1.0"
            else:
                bad = sum(1 for ci in cis if ci is None or ci[0] <= 1.0)
                lows = [ci[0] for ci in cis if ci]
                check = (f"lowest bound {min(lows):.2f}x" if lows else "no interval") + ("" if not bad else f"; {bad} not above 1")
            failed += bad
            cells = " ".join(v.speedup_text() or v.verdict for v in vs)
            cvs = " ".join(f"{v.ref_cv or 0:.2f}/{v.candidate_cv or 0:.2f}" for v in vs)
            table.add_row(task.id, kind, cells, cvs, check)
            rows.append(_row(task, kind, a.busy, vs))
    Console().print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
