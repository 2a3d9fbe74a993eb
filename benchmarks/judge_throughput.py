"""Throughput: candidate evaluations per GPU-hour over the built-in suite, builds overlapped on
CPU workers (target >= 300). Candidates are the references themselves (ModelNew = Model).

    python benchmarks/judge_throughput.py [--level N] [--limit N] [--build-workers 4] [--no-prestart] [--passes 2]

Every evaluation times its reference live, interleaved with the candidate (the judge keeps no
expected outputs or reference timings between evaluations); later passes reuse the builds.
``--no-prestart`` starts each candidate's process
only when its evaluation begins (for comparison with the default, which starts it ahead).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cudal1.judge import Judge, JudgeConfig
from cudal1.tasks import load_suite

from judge_overhead import reference_as_candidate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="auto")
    p.add_argument("--size", default="full")
    p.add_argument("--level", type=int)
    p.add_argument("--limit", type=int)
    p.add_argument("--build-workers", type=int, default=4)
    p.add_argument("--no-prestart", action="store_true", help="start each candidate process only when its turn comes")
    p.add_argument("--passes", type=int, default=1, help="passes over the jobs; later ones reuse the builds")
    p.add_argument("--json")
    a = p.parse_args()
    tasks = load_suite("builtin", size=a.size, level=a.level).tasks[: a.limit]
    judge = Judge(a.device, JudgeConfig(remeasure_threshold_l1=1e9, remeasure_threshold=1e9, prestart_processes="off" if a.no_prestart else "on"))
    jobs = [(t, reference_as_candidate(t)) for t in tasks]
    table = Table(title=f"judge throughput ({judge.device_name}, torch {judge.torch_version}, "
                        f"processes {'started when needed' if a.no_prestart else 'started ahead'})")
    for col in ("pass", "reference", "evaluations", "wall s", "s / evaluation", "evaluations / GPU-hour", "verdicts"):
        table.add_column(col)
    passes = []
    for n in range(max(1, a.passes)):
        t0 = time.monotonic()
        with Progress(transient=True) as progress:
            bar = progress.add_task(f"pass {n + 1}", total=len(jobs))
            verdicts = judge.evaluate_many(jobs, build_workers=a.build_workers, on_result=lambda i, v: progress.advance(bar))
        wall = time.monotonic() - t0
        per_hour = len(jobs) / wall * 3600
        counts = Counter(v.verdict for v in verdicts)
        table.add_row(str(n + 1), "live", str(len(jobs)), f"{wall:.1f}", f"{wall / len(jobs):.2f}", f"{per_hour:.0f}",
                      ", ".join(f"{k}={v}" for k, v in counts.items()))
        passes.append({"wall_s": wall, "per_hour": per_hour, "verdicts": {t.id: v.to_record() for t, v in zip(tasks, verdicts)}})
        bad = [(t.id, v.verdict, v.finding_ids()[:3], (v.details.get("error") or "")[:200]) for t, v in zip(tasks, verdicts) if v.verdict != "accepted"]
        for row in bad:
            Console().print(row)
    Console().print(table)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"prestart": not a.no_prestart, "passes": passes}, f, indent=1)


if __name__ == "__main__":
    main()
