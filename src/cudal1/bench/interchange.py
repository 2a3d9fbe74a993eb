"""The JSON-lines layout of CUDA-L1's published kernels, read and written.

One JSON object per line (CUDA-L1 names its files ``*.json`` though they are JSON lines; a
single JSON array is accepted too):

``level_id`` (int), ``task_id`` (int, the number in ``levelN/ID_Name``), ``ref_code`` (the
reference program), ``custom_code`` (the ``ModelNew`` candidate, or null), and score fields
such as ``score_default`` (speedup over eager), ``score_torch_compile_default``,
``score_torch_compile_reduce_overhead``, ``score_cuda_graph``, ``score_cudnn``. Every other
field (``cuda_graph_code``, ``cudnn_code``, ...) is kept as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..tasks.contract import Task, source_hash
from ..tasks.loader import TaskLoadError, check_task_source

# Our baseline kinds and the CUDA-L1 score field that holds the speedup against each.
SCORE_FIELDS = {
    "eager": "score_default",
    "compile": "score_torch_compile_default",
    "compile-reduce-overhead": "score_torch_compile_reduce_overhead",
    "cuda-graph": "score_cuda_graph",
}
_KNOWN = ("level_id", "task_id", "ref_code", "custom_code")


class InterchangeError(ValueError):
    """A JSON-lines file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class InterchangeRow:
    level_id: int
    task_id: int
    ref_code: str | None
    custom_code: str | None
    scores: dict[str, float | None] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"level_id": self.level_id, "task_id": self.task_id, "ref_code": self.ref_code,
                "custom_code": self.custom_code, **self.extra, **self.scores}

    @classmethod
    def from_json(cls, d: dict, where: str = "") -> "InterchangeRow":
        try:
            level_id, task_id = int(d["level_id"]), int(d["task_id"])
        except (KeyError, TypeError, ValueError):
            raise InterchangeError(f"{where}: a row needs integer level_id and task_id") from None
        scores = {k: v for k, v in d.items() if k.startswith("score_")}
        extra = {k: v for k, v in d.items() if k not in _KNOWN and k not in scores}
        return cls(level_id, task_id, d.get("ref_code"), d.get("custom_code"), scores, extra)


def read_rows(path: str | Path) -> list[InterchangeRow]:
    """Read a CUDA-L1 style JSON-lines file (or a JSON array of the same objects)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InterchangeError(f"{p}: cannot be read: {e}") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            return [InterchangeRow.from_json(d, f"{p}: item {i}") for i, d in enumerate(json.loads(stripped))]
        except json.JSONDecodeError as e:
            raise InterchangeError(f"{p}: not valid JSON: {e}") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise InterchangeError(f"{p}:{n}: not valid JSON ({e.msg}); expected one object per line") from None
        rows.append(InterchangeRow.from_json(d, f"{p}:{n}"))
    return rows


def write_rows(rows: list[InterchangeRow] | list[dict], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r.to_json() if isinstance(r, InterchangeRow) else r) + "\n")


@dataclass
class Mapped:
    """Rows matched to tasks: ``(task, custom_code or None, row)``; notes for the user."""

    items: list[tuple[Task, str | None, InterchangeRow]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


IMPORTED_NAME = "Imported"


def task_from_ref(row: InterchangeRow, size: str, origin: str) -> Task:
    """A task built from a row's ``ref_code`` (for rows the suite has no task for)."""
    tid = f"level{row.level_id}/{row.task_id}_{IMPORTED_NAME}"
    specs = check_task_source(row.ref_code or "", f"{origin}:{tid}", size=size)
    return Task(
        id=tid, level=row.level_id, name=IMPORTED_NAME, source=row.ref_code or "",
        source_hash=source_hash(row.ref_code or ""), path=None, size=size, number=row.task_id, suite=origin,
        input_specs=specs,
    )


def map_rows(rows: list[InterchangeRow], suite_tasks: list[Task], size: str, origin: str) -> Mapped:
    """Match rows to suite tasks by (level_id, task_id); a row with ``ref_code`` that the suite
    lacks becomes its own task (its ``ref_code`` is the reference)."""
    by_key = {(t.level, t.number): t for t in suite_tasks}
    out = Mapped()
    seen: set[tuple[int, int]] = set()
    for row in rows:
        key = (row.level_id, row.task_id)
        if key in seen:
            out.errors.append(f"level{row.level_id} task {row.task_id}: appears more than once in {origin}")
            continue
        seen.add(key)
        task = by_key.get(key)
        if task is not None:
            if row.ref_code and row.ref_code.strip() != task.source.strip():
                out.notes.append(f"{task.id}: the row's ref_code differs from the suite's task; the suite's task is the reference")
            out.items.append((task, row.custom_code, row))
            continue
        if not row.ref_code:
            out.errors.append(f"level{row.level_id} task {row.task_id}: no such task in the suite and the row has no ref_code")
            continue
        try:
            out.items.append((task_from_ref(row, size, origin), row.custom_code, row))
        except TaskLoadError as e:
            out.errors.append(str(e))
    return out


def run_rows(results: list, tasks: dict[str, Task], sources: dict[str, str]) -> list[dict]:
    """Our measured results in CUDA-L1's layout: one row per task with ``score_*`` speedups
    (``score_default`` over eager; against the other baselines measured in the run), plus our
    own fields (``task_name``, ``verdict``, ``findings``, ``device``, ``torch``, ``speedup_ci``: the
    95% interval of ``score_default``, null where the judge gave none).

    ``results`` are `bench.stats.TaskResult`s; ``tasks`` maps task id to `Task`; ``sources``
    maps task id to the candidate source that was judged."""
    rows = []
    for r in results:
        task = tasks.get(r.task_id)
        row = {
            "level_id": r.level,
            "task_id": task.number if task else int(r.task_id.split("/")[1].split("_")[0]),
            "ref_code": task.source if task else None,
            "custom_code": sources.get(r.task_id),
            "task_name": task.name if task else r.task_id,
            "verdict": r.status,
            "findings": [f.id for f in r.verdict.findings] if r.verdict else [],
            "device": r.verdict.device if r.verdict else None,
            "torch": r.verdict.torch if r.verdict else None,
            "speedup_ci": [round(x, 4) for x in ci] if (ci := r.ratio_interval("eager")) else None,
        }
        for kind, score in SCORE_FIELDS.items():
            if kind == "eager" or kind in r.baselines:
                ratio = r.ratio(kind)
                row[score] = round(ratio, 4) if ratio is not None else None
        rows.append(row)
    return rows


@dataclass
class ImportSummary:
    written: list[str] = field(default_factory=list)  # candidate files for suite tasks
    extra: list[str] = field(default_factory=list)  # tasks built from ref_code (own references)
    without_code: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


EXTRA_DIR = "_extra"  # benches skip folders whose names start with "_"


def import_rows(rows: list[InterchangeRow], suite_tasks: list[Task], out_dir: str | Path, origin: str = "") -> ImportSummary:
    """Write a candidates folder from rows: ``OUT/levelN/ID_Name.py`` for rows of suite tasks;
    rows the suite lacks (with ``ref_code``) go to ``OUT/_extra/reference/levelN/ID_Imported.py``
    (a suite of their own) and ``OUT/_extra/candidates/...``; ``OUT/published.jsonl`` keeps each
    row's scores and unknown fields (without the code)."""
    out = Path(out_dir)
    summary = ImportSummary()
    mapped = map_rows(rows, suite_tasks, size="full", origin=origin or str(out))
    summary.notes, summary.errors = list(mapped.notes), list(mapped.errors)
    suite_ids = {t.id for t in suite_tasks}
    published = []
    for task, code, row in mapped.items:
        rel = Path(*task.id.split("/")).with_suffix(".py")
        if task.id not in suite_ids:
            ref = out / EXTRA_DIR / "reference" / rel
            ref.parent.mkdir(parents=True, exist_ok=True)
            ref.write_text(task.source, encoding="utf-8")
            summary.extra.append(task.id)
            target = out / EXTRA_DIR / "candidates" / rel
        else:
            target = out / rel
        published.append({"level_id": row.level_id, "task_id": row.task_id, "task": task.id, **row.extra, **row.scores})
        if not code:
            summary.without_code.append(task.id)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code, encoding="utf-8")
        summary.written.append(task.id)
    out.mkdir(parents=True, exist_ok=True)
    write_rows(published, out / "published.jsonl")
    return summary
