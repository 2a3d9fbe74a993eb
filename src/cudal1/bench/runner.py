"""`run_bench`: judge a folder (or JSON-lines file, or earlier run) of candidates and the chosen
baselines over a suite, storing each verdict the moment it arrives.

Resuming: every job is keyed by (task source hash, size, candidate source hash, device name,
judge config key). A job whose key already has a verdict in the store is not judged again;
its verdict is linked into this run. A bench killed half-way and started again with the same
arguments continues the same run id.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config_fields import setting
from ..judge.config import JudgeConfig
from ..judge.verdict import Verdict
from ..search.judging import Recording, judge_and_store
from ..store import Candidate, Store, config_key
from ..store.records import Attempt
from ..tasks.contract import Task
from ..tasks.loader import LEVEL_DIR_RE, TASK_FILE_RE, load_suite
from .baselines import BASELINES, baseline_source
from .interchange import InterchangeError, InterchangeRow, map_rows, read_rows
from .stats import Summary, TaskResult, bench_statistics

log = logging.getLogger(__name__)


class BenchError(ValueError):
    """A bench that cannot start (bad suite, candidates that match no task, ...): the message
    says what to change. The CLI exits with status 2."""


@dataclass(frozen=True)
class BenchOptions:
    suite: str = setting("builtin", "'builtin' or a KernelBench checkout (folder with level1/, level2/, ...)")
    candidates: str = setting("", "A folder mirroring the suite (levelN/ID_Name.py), a CUDA-L1 JSON-lines file, or a run id; '' = baselines only",
                              metavar="PATH|RUN")
    baselines: tuple[str, ...] = setting(("eager",), f"Baselines judged beside the candidates, from: {', '.join(BASELINES)}")
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    size: str = setting("full", "full or smoke", choices=("full", "smoke"))
    gpus: int = setting(1, "Judge on GPUs cuda:0..N-1 of this machine, one worker each")
    ray: str | None = setting(None, "Judge on Ray actors (one per GPU): 'auto' starts a local cluster, else a cluster address; none = local workers")
    level: int | None = setting(None, "Only this level")
    tasks: str | None = setting(None, "Only task ids matching these comma-separated globs (level1/*, *Matmul*)", metavar="GLOB")
    fresh: bool = setting(False, "Judge everything again instead of reusing stored verdicts")
    build_workers: int = setting(2, "CPU processes building candidates ahead")

    def __post_init__(self):
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise BenchError(f"unknown baseline(s) {', '.join(unknown)}: choose from {', '.join(BASELINES)}")
        if self.gpus < 1:
            raise BenchError("gpus must be at least 1 (--gpus)")
        if self.build_workers < 1:
            raise BenchError("build_workers must be at least 1 (--build-workers)")


@dataclass(frozen=True)
class BenchEvent:
    """Progress: ``phase`` is ``start`` (``total`` jobs to judge, ``reused`` already judged) or
    ``result`` (one verdict, ``done`` of ``total``)."""

    phase: str
    done: int = 0
    total: int = 0
    reused: int = 0
    task_id: str = ""
    job: str = ""  # "candidate" or "baseline:<kind>"
    verdict: Verdict | None = None
    missing: tuple[str, ...] = ()  # start: the selected tasks that have no candidate


@dataclass
class CandidateSet:
    """Which candidate source goes with which task; tasks the source brought (JSON lines)."""

    sources: dict[str, str] = field(default_factory=dict)
    extra_tasks: list[Task] = field(default_factory=list)
    policy: str = "user"
    meta: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class BenchResult:
    run_id: int
    device_name: str
    baselines: tuple[str, ...]
    results: list[TaskResult]
    tasks: dict[str, Task] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    judged: int = 0
    reused: int = 0
    status: str = "done"

    @property
    def missing(self) -> list[str]:
        return [r.task_id for r in self.results if r.verdict is None]

    def statistics(self) -> list[Summary]:
        return bench_statistics(self.results, self.baselines)


# --- candidates ------------------------------------------------------------------------------
def _match_file(rel: Path, tasks: list[Task]) -> Task | None:
    """A candidate file ``levelN/ID_Name.py`` -> its task: by id, else by (level, ID)."""
    if len(rel.parts) != 2:
        return None
    lm, fm = LEVEL_DIR_RE.match(rel.parts[0]), TASK_FILE_RE.match(rel.parts[1])
    if not lm or not fm:
        return None
    tid = f"{rel.parts[0]}/{rel.stem}"
    for t in tasks:
        if t.id == tid:
            return t
    same = [t for t in tasks if t.level == int(lm.group(1)) and t.number == int(fm.group(1))]
    return same[0] if len(same) == 1 else None


def candidates_from_folder(folder: Path, tasks: list[Task]) -> CandidateSet:
    """Read ``folder/levelN/ID_Name.py`` files. Every ``.py`` file must match a task: the ones
    that do not are listed together in one `BenchError`."""
    out, unmatched = CandidateSet(), []
    for f in sorted(folder.rglob("*.py")):
        rel = f.relative_to(folder)
        if f.name.startswith("__") or any(p.startswith((".", "_")) for p in rel.parts[:-1]):
            continue
        task = _match_file(rel, tasks)
        if task is None:
            unmatched.append(str(rel))
            continue
        if task.id in out.sources:
            unmatched.append(f"{rel} (a second candidate for {task.id})")
            continue
        out.sources[task.id] = f.read_text(encoding="utf-8")
        out.meta[task.id] = {"file": str(f)}
    if unmatched:
        raise BenchError(
            f"{len(unmatched)} file(s) in {folder} match no task of the suite: " + ", ".join(unmatched)
            + " (a candidates folder mirrors the suite: levelN/ID_Name.py; see `cudal1 tasks list`)"
        )
    return out


def candidates_from_jsonl(path: Path, tasks: list[Task], size: str) -> CandidateSet:
    try:
        rows = read_rows(path)
    except InterchangeError as e:
        raise BenchError(str(e)) from None
    mapped = map_rows(rows, tasks, size=size, origin=str(path))
    if mapped.errors:
        raise BenchError(f"{len(mapped.errors)} row(s) of {path} cannot be used: " + "; ".join(mapped.errors))
    out = CandidateSet(policy="import", notes=list(mapped.notes))
    suite_ids = {t.id for t in tasks}
    for task, code, row in mapped.items:
        if task.id not in suite_ids:
            out.extra_tasks.append(task)
        if code:
            out.sources[task.id] = code
            out.meta[task.id] = {"origin": str(path), "published": _published(row)}
    return out


def _published(row: InterchangeRow) -> dict:
    return {k: v for k, v in row.scores.items() if v is not None}


def candidates_from_run(store: Store, run_id: int, tasks: list[Task] | None = None, size: str = "full") -> CandidateSet:
    """The best accepted (else the latest) candidate of each task in an earlier run. Tasks of
    that run that the suite lacks come from the store (at ``size``, when recorded there)."""
    if store.run(run_id) is None:
        raise BenchError(f"no run {run_id} in {store.path} (see `cudal1 report --list`)")
    best: dict[str, tuple[float, int]] = {}
    for r in store.run_results(run_id):
        if r.kind != "candidate":
            continue
        v = r.verdict
        score = v.speedup if v.accepted else -1.0
        if r.task_id not in best or score >= best[r.task_id][0]:
            best[r.task_id] = (score, r.candidate_id)
    out = CandidateSet(policy="user")
    suite_ids = {t.id for t in tasks or []}
    for task_id, (_, cid) in best.items():
        if task_id not in suite_ids:
            stored = store.task(task_id, size)
            if stored is None:
                out.notes.append(f"{task_id} (run {run_id}) is not in the suite nor stored at size {size}: skipped")
                continue
            out.extra_tasks.append(stored)
        out.sources[task_id] = store.candidate(cid).source
        out.meta[task_id] = {"from_run": run_id, "candidate_id": cid}
    return out


def load_candidates(spec: str, tasks: list[Task], size: str, store: Store) -> CandidateSet:
    if not spec:
        return CandidateSet()
    p = Path(spec).expanduser()
    if p.is_dir():
        return candidates_from_folder(p, tasks)
    if p.is_file() and p.suffix in (".jsonl", ".json"):
        return candidates_from_jsonl(p, tasks, size)
    if re.fullmatch(r"\d+", spec):
        return candidates_from_run(store, int(spec), tasks, size)
    raise BenchError(f"--candidates {spec!r} is neither a folder, a .jsonl/.json file, nor a run id")


def select_tasks(tasks: list[Task], level: int | None, pattern: str | None) -> list[Task]:
    """Tasks of ``level`` whose id (or ``ID_Name`` part) matches one of the comma-separated globs."""
    out = [t for t in tasks if level is None or t.level == level]
    if pattern:
        globs = [g.strip() for g in pattern.split(",") if g.strip()]
        out = [t for t in out if any(fnmatch.fnmatch(t.id, g) or fnmatch.fnmatch(t.id.split("/", 1)[1], g) for g in globs)]
    return out


def check_coverage(options: BenchOptions, cands: CandidateSet, tasks: list[Task]) -> list[str]:
    """The selected tasks without a candidate, known before anything is judged. Candidates that
    cover none of them are a `BenchError` naming the candidates, the tasks and the flags to
    change: benching only baselines and reporting every task missing a minute later helps no one."""
    if not options.candidates:  # a baselines-only bench
        return []
    missing = [t.id for t in tasks if t.id not in cands.sources]
    if len(missing) < len(tasks):
        return missing
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    have = sorted(cands.sources)
    has = (f"it has candidates for {len(have)} other task(s): " + ", ".join(have[:5])
           + (" ..." if len(have) > 5 else "")) if have else "it holds no candidate at all"
    flags = ([f"--level {options.level}"] if options.level is not None else []) + (
        [f"--tasks {options.tasks!r}"] if options.tasks else [])
    selection = f" (selected by {' '.join(flags)})" if flags else f" (all of suite {options.suite!r})"
    raise BenchError(
        f"--candidates {options.candidates} has no candidate for any of the {len(tasks)} selected task(s){selection}: "
        f"{shown}; {has}. Pick tasks it covers with --tasks/--level, or point --candidates at a folder "
        "(levelN/ID_Name.py), .jsonl file or run id that covers these; --candidates '' benches baselines only")


# --- the bench --------------------------------------------------------------------------------
def _run_config(options: BenchOptions, cands: CandidateSet, judge_key: str, device: str) -> dict:
    digest = hashlib.sha256("\n".join(f"{k}:{hashlib.sha256(v.encode()).hexdigest()}"
                                      for k, v in sorted(cands.sources.items())).encode()).hexdigest()[:16]
    spec = options.candidates
    if spec and Path(spec).expanduser().exists():
        spec = str(Path(spec).expanduser().resolve())
    return {"suite": options.suite, "candidates": spec, "candidates_digest": digest, "baselines": list(options.baselines),
            "size": options.size, "level": options.level, "tasks": options.tasks, "judge_config_key": judge_key,
            "device_name": device}


def run_bench(
    options: BenchOptions,
    store: Store,
    config: JudgeConfig | None = None,
    progress: Callable[[BenchEvent], None] | None = None,
    backend=None,
) -> BenchResult:
    """Bench ``options.candidates`` and ``options.baselines`` over the suite; see the module doc.

    ``backend`` (optional) is an object with ``run(jobs, on_result) -> failures`` and
    ``device_name()``; by default a `LocalBackend` (or a `RayBackend` with ``options.ray``)."""
    from ..judge.device import resolve_device

    config = config or JudgeConfig()
    loaded = load_suite(options.suite, size=options.size)
    if not loaded.tasks and loaded.errors:
        raise BenchError("; ".join(str(e) for e in loaded.errors[:5]))
    cands = load_candidates(options.candidates, loaded.tasks, options.size, store)
    tasks = select_tasks(loaded.tasks + cands.extra_tasks, options.level, options.tasks)
    if not tasks:
        raise BenchError(f"no task of suite {options.suite!r} matches level={options.level} tasks={options.tasks!r}")
    notes = [f"{e}" for e in loaded.errors] + cands.notes
    missing = check_coverage(options, cands, tasks)

    owned = backend is None  # a backend made here is shut down here
    if backend is None:
        if options.ray:
            from .ray_backend import RayBackend

            backend = RayBackend(options.ray, config, workers=options.gpus if options.gpus > 1 else None,
                                 build_workers=1)
        else:
            from .workers import LocalBackend, local_devices

            try:
                device = resolve_device(options.device)
                devices = [resolve_device(d) for d in local_devices(device, options.gpus)]
            except ValueError as e:
                raise BenchError(str(e)) from None
            backend = LocalBackend(devices, config, build_workers=options.build_workers)
    try:
        return _bench(options, store, config, progress, backend, tasks, cands, notes, missing)
    finally:
        if owned and hasattr(backend, "shutdown"):
            backend.shutdown()


def _bench(options, store, config, progress, backend, tasks, cands, notes, missing=()) -> BenchResult:
    try:
        dev_name = backend.device_name()
    except ValueError as e:
        raise BenchError(str(e)) from None
    key = config_key(config)
    import torch

    run_config = _run_config(options, cands, key, dev_name)
    run_id = None if options.fresh else store.resumable_run("bench", run_config)
    if run_id is not None:
        store.reopen_run(run_id)
        notes.append(f"resumed run {run_id}")
    else:
        run_id = store.start_run("bench", run_config, dev_name, torch.__version__)

    # Baselines first, then the candidate, task by task; verdicts the store already has are reused.
    items: list[tuple[Task, Candidate]] = []
    for task in tasks:
        items += [(task, Candidate(task.id, baseline_source(task, b), policy="baseline", strategy=b))
                  for b in options.baselines]
        if task.id in cands.sources:
            items.append((task, Candidate(task.id, cands.sources[task.id], policy=cands.policy,
                                          meta=cands.meta.get(task.id, {}))))
    todo: list[int] = []
    judged_now: set[int] = set()
    done = 0

    def on_start(indices: list[int]) -> None:
        todo.extend(indices)
        judged_now.update(indices)
        if progress:
            progress(BenchEvent("start", total=len(todo), reused=len(items) - len(todo), missing=tuple(missing)))

    def on_attempt(i: int, attempt: Attempt) -> None:
        nonlocal done
        if i not in judged_now:
            return
        done += 1
        if progress:
            task, cand = items[i]
            progress(BenchEvent("result", done=done, total=len(todo), task_id=task.id, job=cand.run_kind,
                                verdict=attempt.verdict))

    failures: list = []

    def evaluate(jobs, on_result) -> None:
        failures.extend(backend.run(jobs, on_result))

    status = "interrupted"
    try:
        judge_and_store(items, evaluate, Recording(store, dev_name, key, run_id, reuse=not options.fresh),
                        on_start=on_start, on_attempt=on_attempt)
        status = "done" if not failures else "incomplete"
    finally:
        store.finish_run(run_id, status)
    result = load_run(store, run_id, tasks=tasks)
    result.sources = {t.id: cands.sources[t.id] for t in tasks if t.id in cands.sources}
    result.notes = notes
    failed = [(items[todo[f.index]], f.reason) for f in failures]
    result.failures = [f"{task.id} ({cand.run_kind}): {reason}" for (task, cand), reason in failed]
    result.judged, result.reused, result.status = done, len(items) - len(todo), status
    return result


def load_run(store: Store, run_id: int, tasks: list[Task] | None = None) -> BenchResult:
    """A stored run as a `BenchResult`: for each task its candidate verdict (the best accepted,
    else the latest) and its baselines. ``tasks`` (a bench's task list) adds tasks that had no
    candidate, so that they count as missing."""
    run = store.run(run_id)
    if run is None:
        raise BenchError(f"no run {run_id} in {store.path}")
    by_task: dict[str, dict] = {}
    levels: dict[str, int] = {}
    for t in tasks or []:
        by_task.setdefault(t.id, {"verdict": None, "baselines": {}})
        levels[t.id] = t.level
    stored_tasks: dict[str, Task] = {}
    sources: dict[str, str] = {}
    judged = reused = 0
    for r in store.run_results(run_id):
        reused += r.reused
        judged += not r.reused
        entry = by_task.setdefault(r.task_id, {"verdict": None, "baselines": {}})
        levels[r.task_id] = r.level
        if r.task_id not in stored_tasks:
            t = store.task_by_hash(r.task_hash, r.size)
            if t is not None:
                stored_tasks[r.task_id] = t
        v = r.verdict
        if r.is_baseline:
            entry["baselines"][r.kind[len("baseline:"):]] = v
            continue
        cur = entry["verdict"]
        if cur is None or (v.accepted and (not cur.accepted or (v.speedup or 0) > (cur.speedup or 0))) or (
                not cur.accepted and not v.accepted):
            entry["verdict"] = v
            sources[r.task_id] = store.candidate(r.candidate_id).source
    order = {t.id: i for i, t in enumerate(tasks or [])}
    ids = sorted(by_task, key=lambda i: (order.get(i, 10**9), levels.get(i, 0), _number(i), i))
    results = [TaskResult(i, levels.get(i, 0), by_task[i]["verdict"], by_task[i]["baselines"]) for i in ids]
    baselines = tuple(b for b in run.config.get("baselines", []) if b)
    if not baselines:
        seen = {k for r in results for k in r.baselines}
        baselines = tuple(b for b in BASELINES if b in seen)
    all_tasks = {**stored_tasks, **{t.id: t for t in tasks or []}}
    return BenchResult(run_id=run_id, device_name=run.device, baselines=baselines, results=results,
                       tasks=all_tasks, sources=sources, status=run.status, judged=judged, reused=reused)


def _number(task_id: str) -> int:
    m = re.match(r"level\d+/(\d+)_", task_id)
    return int(m.group(1)) if m else 0
