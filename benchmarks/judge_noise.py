"""Noise: the same candidate evaluated N times; coefficient of variation of the speedup
(target < 2% for tasks of at least 0.1 ms).

    python benchmarks/judge_noise.py [--tasks level1/1_Square_Matmul,level2/1_...] [--n 5]
"""

from __future__ import annotations

import argparse
import json
import statistics

from rich.console import Console
from rich.table import Table

from cudal1.judge import Judge, JudgeConfig
from cudal1.tasks import resolve_task

from judge_overhead import reference_as_candidate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tasks", default="level1/1_Square_Matmul,level1/20_Softmax,level2/1,level3/1")
    p.add_argument("--device", default="auto")
    p.add_argument("--size", default="full")
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--json")
    a = p.parse_args()
    judge = Judge(a.device, JudgeConfig(remeasure_threshold_l1=1e9, remeasure_threshold=1e9, reference_cache=False))
    table = Table(title=f"speedup noise, {a.n} evaluations each ({judge.device_name}, torch {judge.torch_version})")
    for col in ("task", "ref ms", "speedups", "mean", "CV %"):
        table.add_column(col)
    rows = []
    for tid in a.tasks.split(","):
        task = resolve_task(tid, size=a.size)
        src = reference_as_candidate(task)
        build = judge.build(task, src)
        vs = [judge.evaluate(task, src, prebuilt=build) for _ in range(a.n)]
        s = [v.speedup for v in vs if v.speedup]
        cv = statistics.pstdev(s) / statistics.mean(s) * 100 if len(s) > 1 else float("nan")
        ref = statistics.median(v.ref_ms for v in vs if v.ref_ms)
        rows.append({"task": task.id, "ref_ms": ref, "speedups": s, "cv_percent": cv, "verdicts": [v.verdict for v in vs]})
        table.add_row(task.id, f"{ref:.3f}", " ".join(f"{x:.3f}" for x in s), f"{statistics.mean(s):.3f}" if s else "-", f"{cv:.2f}")
    Console().print(table)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
