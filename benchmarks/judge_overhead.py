"""Wall time of one evaluation of an already-built candidate on a level-1 task (target < 10 s),
alone and inside a batch (`evaluate_many`, where each next process is started ahead).

    python benchmarks/judge_overhead.py [--task level1/1_Square_Matmul] [--device auto] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from rich.console import Console
from rich.table import Table

from cudal1.judge import Judge, JudgeConfig
from cudal1.tasks import resolve_task


def reference_as_candidate(task) -> str:
    """The reference itself as a ModelNew (the bench's eager baseline): speedup ~1.0 by construction."""
    from cudal1.bench.baselines import baseline_source

    return baseline_source(task, "eager")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--task", default="level1/1_Square_Matmul")
    p.add_argument("--device", default="auto")
    p.add_argument("--size", default="full")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json")
    a = p.parse_args()
    task = resolve_task(a.task, size=a.size)
    judge = Judge(a.device, JudgeConfig(remeasure_threshold_l1=1e9, remeasure_threshold=1e9, prestart_processes="on"))
    src = reference_as_candidate(task)
    t0 = time.monotonic()
    first = judge.evaluate(task, src)  # builds (the reference runs live in every evaluation)
    first_s = time.monotonic() - t0
    say = Console().print
    say(f"first: {first_s:.2f} s {first.verdict} speedup={first.speedup} stages={first.details.stage_s}")
    build = judge.build(task, src)
    walls = []
    for k in range(a.repeats):
        t0 = time.monotonic()
        v = judge.evaluate(task, src, prebuilt=build)
        walls.append(time.monotonic() - t0)
        say(f"single {k + 1}: {walls[-1]:.2f} s {v.verdict} speedup={v.speedup} "
            f"pace={v.details.pace_ms} stages={v.details.stage_s}")
    # The same evaluations as one batch: each next candidate process starts while one is judged.
    t0 = time.monotonic()
    mark = [t0]

    def done(i, verdict):
        now = time.monotonic()
        say(f"batch {i + 1}: {now - mark[0]:.2f} s {verdict.verdict} speedup={verdict.speedup} "
            f"prestarted={verdict.details.process_prestarted} stages={verdict.details.stage_s}")
        mark[0] = now

    batch = judge.evaluate_many([(task, src)] * a.repeats, on_result=done)
    batch_s = (time.monotonic() - t0) / a.repeats
    table = Table(title=f"judge overhead on {task.id} ({judge.device_name}, torch {judge.torch_version})")
    for col in ("first evaluation (s)", "cached reference, prebuilt (median s)", "same, in a batch (s each)", "verdict", "speedup"):
        table.add_column(col)
    table.add_row(f"{first_s:.2f}", f"{statistics.median(walls):.2f}", f"{batch_s:.2f}", v.verdict, f"{v.speedup}")
    Console().print(table)
    Console().print("stage seconds of the last single evaluation:", v.details.stage_s)
    Console().print("stage seconds of the last batch evaluation:", batch[-1].details.stage_s)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"task": task.id, "device": judge.device_name, "first_s": first_s, "walls_s": walls, "batch_s_each": batch_s,
                       "verdict": v.to_record(), "first_verdict": first.verdict,
                       "batch_verdicts": [b.verdict for b in batch]}, f, indent=1)

if __name__ == "__main__":
    main()
