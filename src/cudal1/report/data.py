"""The machine-readable form of a bench (``--json``) and of a cross-run comparison, and the
per-task numbers tables and the HTML page share (% of roofline)."""

from __future__ import annotations

from pathlib import Path

from ..bench.runner import BenchResult
from ..bench.stats import VIEW_LABELS, TaskResult, bench_statistics

ROOFLINE_DEFINITION = (
    "% of roofline: the task's roofline time over the candidate's measured time (100% = as fast as this GPU "
    "allows for that work). Roofline time = max(the reference's FLOPs at this GPU's measured peak FLOP/s for "
    "their kind and dtype, its fewest bytes / the measured memory bandwidth). Above 100% only when the candidate "
    "skips work or uses a lower precision than the task's (fp32 matmuls count at the CUDA-core peak). "
    "-: unknown (candidate not accepted, work not countable, or no measured peaks for this GPU: "
    "cudal1 roofline --measure-peaks).")


def roofline_fractions(result: BenchResult, cache_path: Path | None = None) -> dict[str, float | None] | None:
    """Each task's roofline time over its candidate's measured time (1.0 = at the roofline), from
    the run's stored verdicts (``candidate_ms``), the task's FLOPs and fewest bytes
    (`cudal1.analysis.roofline.task_work`) and the cached measured peaks of the run's GPU.

    None when that GPU has no measured peaks; a task maps to None when its candidate was not
    accepted, its task is not known, or its work cannot be counted.
    """
    from ..analysis.roofline import peaks_for_device_name, roofline_fraction, task_work

    peaks = peaks_for_device_name(result.device_name, cache_path)
    if peaks is None:
        return None
    fractions: dict[str, float | None] = {}
    for r in result.results:
        task = result.tasks.get(r.task_id)
        fractions[r.task_id] = None
        if task is None or not r.accepted:
            continue
        try:
            fractions[r.task_id] = roofline_fraction(task_work(task), r.verdict.candidate_ms, peaks)
        except Exception:  # noqa: BLE001 - a task whose work cannot be counted shows "-", not a crash
            continue
    return fractions


def task_row(r: TaskResult, baselines: tuple[str, ...], roofline: dict[str, float | None] | None = None) -> dict:
    return {
        "task_id": r.task_id,
        "level": r.level,
        "status": r.status,
        "speedup": r.verdict.speedup if r.verdict else None,
        "roofline_fraction": (roofline or {}).get(r.task_id),
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


def result_json(result: BenchResult, roofline: dict[str, float | None] | None = None) -> dict:
    """Everything a bench measured: run, device, statistics (both views, every baseline), tasks;
    with ``roofline`` (`roofline_fractions`) each task's ``roofline_fraction`` (else null)."""
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
        "roofline_peaks": roofline is not None,
        "tasks": [task_row(r, result.baselines, roofline) for r in result.results],
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
