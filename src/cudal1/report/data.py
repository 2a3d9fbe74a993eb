"""The machine-readable form of a bench (``--json``) and of a cross-run comparison."""

from __future__ import annotations

from ..bench.runner import BenchResult
from ..bench.stats import VIEW_LABELS, TaskResult, bench_statistics


def task_row(r: TaskResult, baselines: tuple[str, ...]) -> dict:
    return {
        "task_id": r.task_id,
        "level": r.level,
        "status": r.status,
        "speedup": r.verdict.speedup if r.verdict else None,
        "speedup_ci": _ci(r.ratio_interval("eager")),
        "significant": r.significant("eager"),
        "against": {b: r.ratio(b) for b in baselines if b != "eager"},
        "against_ci": {b: _ci(r.ratio_interval(b)) for b in baselines if b != "eager"},
        "baselines": {k: {"verdict": v.verdict, "speedup": v.speedup, "speedup_ci": _ci(v.speedup_ci)}
                      for k, v in r.baselines.items()},
        "findings": [f.to_json() for f in r.verdict.findings] if r.verdict else [],
        "verdict": r.verdict.to_json() if r.verdict else None,
    }


def _ci(ci) -> list[float] | None:
    return list(ci) if ci else None


def result_json(result: BenchResult) -> dict:
    """Everything a bench measured: run, device, statistics (both views, every baseline), tasks."""
    return {
        "run_id": result.run_id,
        "status": result.status,
        "device": result.device_name,
        "baselines": list(result.baselines),
        "judged": result.judged,
        "reused": result.reused,
        "missing": result.missing,
        "notes": result.notes,
        "failures": result.failures,
        "views": VIEW_LABELS,
        "statistics": [s.to_json() for s in result.statistics()],
        "tasks": [task_row(r, result.baselines) for r in result.results],
    }


def compare_json(results: list[BenchResult]) -> dict:
    """Per level mean/median and significant wins (``faster``) of each run (both views, against
    eager) and per task speedups with their 95% intervals side by side."""
    levels: dict[str, dict] = {}
    for res in results:
        for s in bench_statistics(res.results):
            if s.against != "eager":
                continue
            levels.setdefault(s.group, {}).setdefault(str(res.run_id), {})[s.view] = {
                "tasks": s.tasks, "valid": s.valid, "faster": s.faster, "mean": s.mean, "median": s.median,
                "geomean": s.geomean}
    ids = []
    for res in results:
        ids += [r.task_id for r in res.results if r.task_id not in ids]
    per_task = []
    for tid in ids:
        row = {"task_id": tid}
        for res in results:
            r = next((x for x in res.results if x.task_id == tid), None)
            row[str(res.run_id)] = None if r is None else {"status": r.status, "speedup": r.ratio("eager"),
                                                           "speedup_ci": _ci(r.ratio_interval("eager"))}
        per_task.append(row)
    return {
        "runs": [{"run_id": r.run_id, "device": r.device_name, "status": r.status} for r in results],
        "levels": levels,
        "tasks": per_task,
    }
