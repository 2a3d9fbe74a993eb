"""`Store`: the SQLite database of tasks, candidates, verdicts, runs, baselines and hacks.

One file (``.cudal1/cudal1.db`` in the working directory unless ``path`` or ``CUDAL1_DB`` says
otherwise, so each project keeps its own runs) in WAL mode with a busy timeout, so several
processes on one machine may write at once: every write is its own short ``BEGIN IMMEDIATE``
transaction, committed before the call returns, so nothing judged is lost when a process is killed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..judge.verdict import Finding, KernelShare, Verdict, VerdictDetails
from ..tasks.contract import Task, source_hash
from .migrations import migrate
from .records import Attempt, Baseline, Candidate, Hack, Run, RunItem

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 60_000
# JudgeConfig fields that do not change what a measurement means (where caches live, whether
# they are used); everything else is part of the config key.
_CONFIG_KEY_IGNORES = ("cache_dir", "best_speedup", "prestart_processes")


STORE_DIR = ".cudal1"  # the default store's folder, in the working directory
# Where versions before the per-directory default kept every project's runs in one file.
OLD_DEFAULT_DB = Path("~/.cache/cudal1/cudal1.db")


def default_db_path() -> Path:
    """``$CUDAL1_DB`` if set, else ``.cudal1/cudal1.db`` under the current working directory
    (absolute): one store per project, not one for the whole machine."""
    env = os.environ.get("CUDAL1_DB")
    if env:
        return Path(env).expanduser()
    return Path.cwd() / STORE_DIR / "cudal1.db"


def _keep_out_of_git(folder: Path) -> None:
    """Give the default store's folder a ``.gitignore`` of ``*`` (as .pytest_cache and .venv
    have), so running cudal1 in a repository leaves no untracked files."""
    ignore = folder / ".gitignore"
    if not ignore.exists():
        try:
            ignore.write_text("# created by cudal1: the store stays out of git\n*\n", encoding="utf-8")
        except OSError as e:  # a read-only folder still holds a usable store
            log.info("could not write %s: %s", ignore, e)


def config_key(config) -> str:
    """A short hash of the judge settings that change what a verdict means (a `JudgeConfig`
    or its JSON dict). Verdicts are reused on resume only under the same key."""
    d = config.to_json() if hasattr(config, "to_json") else dict(config)
    d = {k: v for k, v in d.items() if k not in _CONFIG_KEY_IGNORES}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """The embedded store. Thread-safe (one connection behind a lock); safe across processes."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser() if path else default_db_path()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not path and self.path.parent == Path.cwd() / STORE_DIR:
                _keep_out_of_git(self.path.parent)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._retry(lambda: self._db.execute("PRAGMA journal_mode = WAL"))
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._retry(lambda: migrate(self._db))

    # --- plumbing ------------------------------------------------------------------------
    @staticmethod
    def _retry(fn, attempts: int = 20):
        """Retry on 'database is locked' that the busy handler does not cover (WAL switch)."""
        for i in range(attempts):
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or i == attempts - 1:
                    raise
                time.sleep(0.05 * (i + 1))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._retry(lambda: self._db.execute("BEGIN IMMEDIATE"))
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def schema_version(self) -> int:
        return int(self._query("SELECT version FROM schema_version")[0][0])

    # --- tasks ---------------------------------------------------------------------------
    def add_task(self, task: Task) -> None:
        """Record a task (keyed by source hash and size); recording it again changes nothing."""
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO tasks (source_hash, size, task_id, level, number, name, suite, path,"
                " source, input_specs, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (task.source_hash, task.size, task.id, task.level, task.number, task.name, task.suite,
                 task.path, task.source, json.dumps(list(task.input_specs)), time.time()),
            )

    def task(self, task_id: str, size: str | None = None) -> Task | None:
        """The most recently recorded task with this id (and size)."""
        sql, args = "SELECT * FROM tasks WHERE task_id = ?", [task_id]
        if size:
            sql += " AND size = ?"
            args.append(size)
        rows = self._query(sql + " ORDER BY created DESC LIMIT 1", tuple(args))
        return _task_from_row(rows[0]) if rows else None

    def task_by_hash(self, source_hash: str, size: str) -> Task | None:
        rows = self._query("SELECT * FROM tasks WHERE source_hash = ? AND size = ?", (source_hash, size))
        return _task_from_row(rows[0]) if rows else None

    # --- candidates ----------------------------------------------------------------------
    def add_candidate(self, candidate: Candidate) -> int:
        """Record a candidate; returns its id. Every call records a new row (provenance differs)."""
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO candidates (task_id, source, source_hash, policy, strategy, parents, prompt,"
                " response, template_version, notes, meta, tags, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (candidate.task_id, candidate.source, candidate.source_hash, candidate.policy, candidate.strategy,
                 json.dumps(list(candidate.parents)), candidate.prompt, candidate.response,
                 candidate.template_version, candidate.notes, json.dumps(candidate.meta, default=str),
                 json.dumps(list(candidate.tags)), time.time()),
            )
            return int(cur.lastrowid)

    def candidate(self, candidate_id: int) -> Candidate | None:
        rows = self._query("SELECT * FROM candidates WHERE id = ?", (candidate_id,))
        return _candidate_from_row(rows[0]) if rows else None

    def find_candidate(self, task_id: str, source_hash: str, policy: str | None = None) -> int | None:
        """The id of the earliest candidate of ``task_id`` with this source (and policy), if any."""
        sql, args = "SELECT id FROM candidates WHERE task_id = ? AND source_hash = ?", [task_id, source_hash]
        if policy is not None:
            sql += " AND policy = ?"
            args.append(policy)
        rows = self._query(sql + " ORDER BY id LIMIT 1", tuple(args))
        return int(rows[0][0]) if rows else None

    def candidates(self, task_id: str, policy: str | None = None) -> list[tuple[int, Candidate]]:
        """Every stored candidate of a task (judged or not, e.g. malformed LLM answers), oldest first."""
        sql, args = "SELECT * FROM candidates WHERE task_id = ?", [task_id]
        if policy is not None:
            sql += " AND policy = ?"
            args.append(policy)
        return [(int(r["id"]), _candidate_from_row(r)) for r in self._query(sql + " ORDER BY id", tuple(args))]

    def update_candidate_meta(self, candidate_id: int, patch: dict) -> None:
        """Merge ``patch`` into a candidate's meta (e.g. the adversarial checker's decision)."""
        with self._write() as db:
            row = db.execute("SELECT meta FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
            if row is None:
                raise KeyError(f"no candidate {candidate_id} in the store")
            meta = {**json.loads(row[0] or "{}"), **patch}
            db.execute("UPDATE candidates SET meta = ? WHERE id = ?", (json.dumps(meta, default=str), candidate_id))

    def set_tags(self, candidate_id: int, tags: list[str] | tuple[str, ...]) -> None:
        """Replace a candidate's technique tags (filled by the explain layer)."""
        with self._write() as db:
            db.execute("UPDATE candidates SET tags = ? WHERE id = ?", (json.dumps(list(tags)), candidate_id))

    # --- verdicts ------------------------------------------------------------------------
    def add_verdict(
        self,
        candidate_id: int,
        verdict: Verdict,
        run_id: int | None = None,
        *,
        task: Task | None = None,
        config_key: str | None = None,
        device_name: str | None = None,
        kind: str = "candidate",
    ) -> int:
        """Record a verdict for a candidate, committed at once; returns its id.

        The resume key (task hash, size, candidate hash, device name, judge config key) comes
        from ``task``/``config_key``/``device_name`` when given, else from keys a caller put into
        ``verdict.details`` (``task_hash``, ``size``, ``config_key``, ``device_name``: kept in
        `VerdictDetails.extra`, as older rows and callers have them), the task recorded under the
        candidate's task id (when only one is) and ``verdict.device``. Pass ``task`` (and
        ``config_key``) whenever you have them.
        With ``run_id`` the verdict also becomes part of that run's results as ``kind``.
        """
        d = verdict.details.extra
        with self._write() as db:
            cand = db.execute("SELECT task_id, source_hash FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
            if cand is None:
                raise KeyError(f"no candidate with id {candidate_id} in {self.path}")
            task_id = task.id if task else cand["task_id"]
            task_hash = task.source_hash if task else str(d.get("task_hash", ""))
            size = task.size if task else str(d.get("size", ""))
            if not task_hash:  # no task given: the one recorded task of this id, if unambiguous
                known = db.execute("SELECT source_hash, size FROM tasks WHERE task_id = ?", (task_id,)).fetchall()
                if len(known) == 1:
                    task_hash, size = known[0]["source_hash"], known[0]["size"]
            key = config_key if config_key is not None else str(d.get("config_key", ""))
            dev = device_name or str(d.get("device_name", "") or verdict.device)
            cur = db.execute(
                "INSERT INTO verdicts (candidate_id, run_id, task_id, task_hash, size, candidate_hash, device_name,"
                " config_key, verdict, correct, speedup, ref_ms, candidate_ms, max_abs_error, findings, device,"
                " torch, kernels, build_s, eval_s, details, created, speedup_low, speedup_high, ref_cv, candidate_cv,"
                " floor_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (candidate_id, run_id, task_id, task_hash, size, cand["source_hash"], dev, key,
                 verdict.verdict, int(verdict.correct), verdict.speedup, verdict.ref_ms, verdict.candidate_ms,
                 verdict.max_abs_error, json.dumps([f.to_json() for f in verdict.findings]), verdict.device,
                 verdict.torch, json.dumps([k.to_json() for k in verdict.kernels]), verdict.build_s,
                 verdict.eval_s, json.dumps(verdict.details.to_json(), default=str), time.time(), *(verdict.speedup_ci or (None, None)),
                 verdict.ref_cv, verdict.candidate_cv, verdict.floor_ms),
            )
            verdict_id = int(cur.lastrowid)
            if run_id is not None:
                self._link(db, run_id, verdict_id, task_id, kind, False, task_hash, size)
            return verdict_id

    @staticmethod
    def _link(db, run_id: int, verdict_id: int, task_id: str, kind: str, reused: bool, task_hash: str, size: str) -> None:
        cur = db.execute(
            "INSERT OR IGNORE INTO run_items (run_id, verdict_id, task_id, kind, reused) VALUES (?,?,?,?,?)",
            (run_id, verdict_id, task_id, kind, int(reused)),
        )
        if cur.rowcount and kind.startswith("baseline:"):
            db.execute(
                "INSERT INTO baselines (run_id, task_id, task_hash, size, kind, verdict_id, created) VALUES (?,?,?,?,?,?,?)",
                (run_id, task_id, task_hash, size, kind[len("baseline:"):], verdict_id, time.time()),
            )

    def find_verdict(
        self, task_source_hash: str, size: str, candidate_source_hash: str, device_name: str, config_key: str
    ) -> Verdict | None:
        """The latest verdict judged under exactly this key, or None (used to resume)."""
        row = self._find_verdict_row(task_source_hash, size, candidate_source_hash, device_name, config_key)
        return _verdict_from_row(row) if row else None

    def find_verdict_id(
        self, task_source_hash: str, size: str, candidate_source_hash: str, device_name: str, config_key: str
    ) -> int | None:
        row = self._find_verdict_row(task_source_hash, size, candidate_source_hash, device_name, config_key)
        return int(row["id"]) if row else None

    def _find_verdict_row(self, task_hash, size, cand_hash, device_name, key) -> sqlite3.Row | None:
        rows = self._query(
            "SELECT * FROM verdicts WHERE task_hash = ? AND size = ? AND candidate_hash = ? AND device_name = ?"
            " AND config_key = ? ORDER BY id DESC LIMIT 1",
            (task_hash, size, cand_hash, device_name, key),
        )
        return rows[0] if rows else None

    def verdict(self, verdict_id: int) -> Verdict | None:
        rows = self._query("SELECT * FROM verdicts WHERE id = ?", (verdict_id,))
        return _verdict_from_row(rows[0]) if rows else None

    def link_verdict(self, run_id: int, verdict_id: int, kind: str = "candidate") -> None:
        """Make an earlier verdict part of ``run_id``'s results (a resumed or repeated bench)."""
        with self._write() as db:
            row = db.execute("SELECT task_id, task_hash, size FROM verdicts WHERE id = ?", (verdict_id,)).fetchone()
            if row is None:
                raise KeyError(f"no verdict with id {verdict_id}")
            self._link(db, run_id, verdict_id, row["task_id"], kind, True, row["task_hash"], row["size"])

    def reuse_verdict(self, verdict_id: int, candidate_id: int, run_id: int | None = None,
                      kind: str = "candidate") -> Verdict:
        """Let an earlier verdict stand for candidate ``candidate_id`` (the same source, judged
        under the same key). When it was judged for that very candidate it is linked into
        ``run_id``; otherwise it is recorded again for this candidate (so each candidate keeps
        its verdict, as a resumed search expects), and listed as reused in ``run_id``."""
        with self._write() as db:
            row = db.execute("SELECT candidate_id, task_hash, size FROM verdicts WHERE id = ?", (verdict_id,)).fetchone()
            if row is None:
                raise KeyError(f"no verdict with id {verdict_id}")
            cand = db.execute("SELECT task_id FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
            if cand is None:
                raise KeyError(f"no candidate with id {candidate_id} in {self.path}")
            if int(row["candidate_id"]) != candidate_id:
                cur = db.execute(
                    f"INSERT INTO verdicts (candidate_id, run_id, task_id, created, {_VERDICT_COPY})"
                    f" SELECT ?, ?, ?, ?, {_VERDICT_COPY} FROM verdicts WHERE id = ?",
                    (candidate_id, run_id, cand["task_id"], time.time(), verdict_id),
                )
                verdict_id = int(cur.lastrowid)
            if run_id is not None:
                self._link(db, run_id, verdict_id, cand["task_id"], kind, True, row["task_hash"], row["size"])
        return self.verdict(verdict_id)

    # --- history for policies ------------------------------------------------------------
    def history(self, task_id: str, device: str | None = None, size: str | None = None) -> list[Attempt]:
        """Earlier judged candidates of the task, oldest first (baselines excluded).

        ``device`` matches either the device name the verdict was recorded under or the
        verdict's own ``device`` field.
        """
        sql = (
            "SELECT v.*, c.source AS c_source, c.strategy AS c_strategy FROM verdicts v"
            " JOIN candidates c ON c.id = v.candidate_id WHERE c.task_id = ? AND c.policy != 'baseline'"
        )
        args: list = [task_id]
        if device:
            sql += " AND (v.device_name = ? OR v.device = ?)"
            args += [device, device]
        if size:
            sql += " AND v.size = ?"
            args.append(size)
        rows = self._query(sql + " ORDER BY v.id", tuple(args))
        return [
            Attempt(source=r["c_source"], verdict=_verdict_from_row(r), strategy=r["c_strategy"],
                    candidate_id=int(r["candidate_id"]))
            for r in rows
        ]

    def best(self, task_id: str, device: str | None = None, size: str | None = None) -> Attempt | None:
        """The accepted attempt with the highest speedup, or None."""
        accepted = [a for a in self.history(task_id, device=device, size=size) if a.verdict.accepted]
        return max(accepted, key=lambda a: a.verdict.speedup or 0.0, default=None)

    # --- runs ----------------------------------------------------------------------------
    def start_run(self, kind: str, config: dict, device: str, torch: str) -> int:
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO runs (kind, config, device, torch, host, pid, started, status)"
                " VALUES (?,?,?,?,?,?,?, 'running')",
                (kind, json.dumps(config, sort_keys=True, default=str), device, torch, socket.gethostname(),
                 os.getpid(), time.time()),
            )
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str = "done") -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET finished = ?, status = ? WHERE id = ?", (time.time(), status, run_id))

    def run(self, run_id: int) -> Run | None:
        """A run's record, or None."""
        rows = self._query(_RUNS_SQL + " WHERE r.id = ?", (run_id,))
        return _run_from_row(rows[0]) if rows else None

    def runs(self, kind: str | None = None, limit: int = 50) -> list[Run]:
        """The latest ``limit`` runs (of ``kind``), newest first, as `run` returns them."""
        sql, args = _RUNS_SQL, ()
        if kind:
            sql, args = sql + " WHERE r.kind = ?", (kind,)
        return [_run_from_row(r) for r in self._query(sql + " ORDER BY r.id DESC LIMIT ?", (*args, limit))]

    def resumable_run(self, kind: str, config: dict) -> int | None:
        """The latest unfinished run of ``kind`` with exactly this config whose process is gone
        (killed or crashed), so that a rerun continues it under the same id."""
        text = json.dumps(config, sort_keys=True, default=str)
        rows = self._query(
            "SELECT * FROM runs WHERE kind = ? AND config = ? AND status != 'done' ORDER BY id DESC LIMIT 1",
            (kind, text),
        )
        if not rows:
            return None
        r = rows[0]
        if r["host"] == socket.gethostname() and r["status"] == "running" and _pid_alive(r["pid"]) and r["pid"] != os.getpid():
            return None  # still running elsewhere on this machine
        return int(r["id"])

    def reopen_run(self, run_id: int) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status = 'running', finished = NULL, host = ?, pid = ? WHERE id = ?",
                (socket.gethostname(), os.getpid(), run_id),
            )

    # --- baselines -----------------------------------------------------------------------
    def add_baseline(
        self, run_id: int | None, task: Task, kind: str, verdict: Verdict, *, source: str | None = None,
        config_key: str | None = None, device_name: str | None = None,
    ) -> int:
        """Record a baseline measurement (eager, compile, ...) of ``task`` in ``run_id``.

        The baseline is kept as a candidate (policy ``baseline``, strategy ``kind``) with its
        verdict, so resuming a bench skips baselines the same way it skips candidates.
        """
        self.add_task(task)
        text = source if source is not None else f"# baseline {kind} of {task.id}\n"
        cand = Candidate(task_id=task.id, source=text, policy="baseline", strategy=kind)
        cand_id = self.find_candidate(task.id, cand.source_hash, policy="baseline") or self.add_candidate(cand)
        verdict_id = self.add_verdict(cand_id, verdict, run_id, task=task, config_key=config_key,
                                      device_name=device_name, kind=f"baseline:{kind}")
        if run_id is None:
            with self._write() as db:
                db.execute(
                    "INSERT INTO baselines (run_id, task_id, task_hash, size, kind, verdict_id, created)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (None, task.id, task.source_hash, task.size, kind, verdict_id, time.time()),
                )
        return verdict_id

    def baselines(self, run_id: int) -> list[Baseline]:
        """Each baseline of the run (the latest per task and kind)."""
        out = {}
        for r in self._query("SELECT task_id, kind, verdict_id FROM baselines WHERE run_id = ? ORDER BY id", (run_id,)):
            out[(r["task_id"], r["kind"])] = Baseline(r["task_id"], r["kind"], self.verdict(r["verdict_id"]))
        return list(out.values())

    def run_results(self, run_id: int) -> list[RunItem]:
        """Everything a run judged or reused, oldest first, one `RunItem` per verdict."""
        rows = self._query(
            "SELECT v.*, i.kind AS item_kind, i.reused AS item_reused, c.policy AS c_policy,"
            " c.strategy AS c_strategy, t.level AS t_level FROM run_items i"
            " JOIN verdicts v ON v.id = i.verdict_id JOIN candidates c ON c.id = v.candidate_id"
            " LEFT JOIN tasks t ON t.source_hash = v.task_hash AND t.size = v.size"
            " WHERE i.run_id = ? ORDER BY v.id",
            (run_id,),
        )
        out = []
        for r in rows:
            level = r["t_level"]
            if level is None:
                level = _level_of(r["task_id"])
            out.append(RunItem(
                task_id=r["task_id"], level=int(level), size=r["size"], task_hash=r["task_hash"], kind=r["item_kind"],
                candidate_id=int(r["candidate_id"]), candidate_hash=r["candidate_hash"], policy=r["c_policy"],
                strategy=r["c_strategy"], verdict_id=int(r["id"]), reused=bool(r["item_reused"]),
                device_name=r["device_name"], config_key=r["config_key"], verdict=_verdict_from_row(r),
            ))
        return out

    # --- hacks ---------------------------------------------------------------------------
    def add_hack(self, task_id: str, source: str, reason: str, origin: str) -> int:
        """Add a confirmed reward hack to the case base (the checker's examples); returns its id.
        The same source for the same task is kept once."""
        h = source_hash(source)
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO hacks (task_id, source, source_hash, reason, origin, created) VALUES (?,?,?,?,?,?)",
                (task_id, source, h, reason, origin, time.time()),
            )
            return int(db.execute("SELECT id FROM hacks WHERE task_id = ? AND source_hash = ?", (task_id, h)).fetchone()[0])

    def hacks(self, task_id: str | None = None) -> list[Hack]:
        """The confirmed hacks (of ``task_id``), oldest first."""
        sql, args = "SELECT * FROM hacks", ()
        if task_id is not None:
            sql, args = sql + " WHERE task_id = ?", (task_id,)
        return [Hack.from_json(dict(r)) for r in self._query(sql + " ORDER BY id", args)]


# --- row conversion ------------------------------------------------------------------------
# A run with the number of distinct candidates linked to it (judged or reused; not baselines).
_RUNS_SQL = (
    "SELECT r.*, (SELECT COUNT(DISTINCT v.candidate_id) FROM run_items i JOIN verdicts v ON v.id = i.verdict_id"
    " WHERE i.run_id = r.id AND i.kind = 'candidate') AS candidates FROM runs r"
)


# The columns of a verdict that a copy for another candidate keeps (`Store.reuse_verdict`).
_VERDICT_COPY = (
    "task_hash, size, candidate_hash, device_name, config_key, verdict, correct, speedup, ref_ms, candidate_ms,"
    " max_abs_error, findings, device, torch, kernels, build_s, eval_s, details, speedup_low, speedup_high,"
    " ref_cv, candidate_cv, floor_ms"
)


def _level_of(task_id: str) -> int:
    head = task_id.split("/", 1)[0]
    return int(head[5:]) if head.startswith("level") and head[5:].isdigit() else 0


def _task_from_row(r: sqlite3.Row) -> Task:
    return Task(
        id=r["task_id"], level=int(r["level"]), name=r["name"], source=r["source"], source_hash=r["source_hash"],
        path=r["path"], size=r["size"], number=int(r["number"]), suite=r["suite"],
        input_specs=tuple(json.loads(r["input_specs"] or "[]")),
    )


def _candidate_from_row(r: sqlite3.Row) -> Candidate:
    return Candidate(
        task_id=r["task_id"], source=r["source"], policy=r["policy"], strategy=r["strategy"],
        parents=tuple(json.loads(r["parents"] or "[]")), prompt=r["prompt"], response=r["response"],
        template_version=r["template_version"], notes=r["notes"], meta=json.loads(r["meta"] or "{}"),
        tags=tuple(json.loads(r["tags"] or "[]")),
    )


def _verdict_from_row(r: sqlite3.Row) -> Verdict:
    return Verdict(
        verdict=r["verdict"], correct=bool(r["correct"]), speedup=r["speedup"], ref_ms=r["ref_ms"],
        candidate_ms=r["candidate_ms"], max_abs_error=r["max_abs_error"],
        findings=tuple(Finding.from_json(f) for f in json.loads(r["findings"] or "[]")),
        device=r["device"], torch=r["torch"],
        kernels=tuple(KernelShare(**k) for k in json.loads(r["kernels"] or "[]")),
        build_s=r["build_s"], eval_s=r["eval_s"], details=VerdictDetails.from_json(json.loads(r["details"] or "{}")),
        speedup_ci=(r["speedup_low"], r["speedup_high"]) if r["speedup_low"] is not None else None,
        ref_cv=r["ref_cv"], candidate_cv=r["candidate_cv"], floor_ms=r["floor_ms"],
    )


def _run_from_row(r: sqlite3.Row) -> Run:
    d = dict(r)
    d["config"] = json.loads(d.get("config") or "{}")
    return Run.from_json(d)
