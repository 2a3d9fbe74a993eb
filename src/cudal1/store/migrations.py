"""Versioned schema migrations for the SQLite store.

``MIGRATIONS[i]`` moves the schema from version ``i`` to ``i + 1``. A migration is only ever
appended, never edited once released: a database records the version it reached in the
``schema_version`` table, and opening it applies exactly the missing steps, in one
``BEGIN IMMEDIATE`` transaction so that two processes opening a new database at once do
not both migrate it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _v1_initial(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        CREATE TABLE tasks (
            source_hash TEXT NOT NULL,
            size        TEXT NOT NULL,
            task_id     TEXT NOT NULL,
            level       INTEGER NOT NULL,
            number      INTEGER NOT NULL DEFAULT 0,
            name        TEXT NOT NULL,
            suite       TEXT NOT NULL DEFAULT '',
            path        TEXT,
            source      TEXT NOT NULL,
            input_specs TEXT NOT NULL DEFAULT '[]',
            created     REAL NOT NULL,
            PRIMARY KEY (source_hash, size)
        );
        CREATE INDEX tasks_by_id ON tasks(task_id);

        CREATE TABLE candidates (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            task_id          TEXT NOT NULL,
            source           TEXT NOT NULL,
            source_hash      TEXT NOT NULL,
            policy           TEXT NOT NULL DEFAULT 'user',
            strategy         TEXT NOT NULL DEFAULT '',
            parents          TEXT NOT NULL DEFAULT '[]',
            prompt           TEXT,
            response         TEXT,
            template_version TEXT,
            notes            TEXT NOT NULL DEFAULT '',
            meta             TEXT NOT NULL DEFAULT '{}',
            tags             TEXT NOT NULL DEFAULT '[]',
            created          REAL NOT NULL
        );
        CREATE INDEX candidates_by_task ON candidates(task_id, source_hash);

        CREATE TABLE runs (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            kind     TEXT NOT NULL,
            config   TEXT NOT NULL DEFAULT '{}',
            device   TEXT NOT NULL DEFAULT '',
            torch    TEXT NOT NULL DEFAULT '',
            host     TEXT NOT NULL DEFAULT '',
            pid      INTEGER,
            started  REAL NOT NULL,
            finished REAL,
            status   TEXT NOT NULL DEFAULT 'running'
        );

        CREATE TABLE verdicts (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            candidate_id   INTEGER NOT NULL REFERENCES candidates(id),
            run_id         INTEGER REFERENCES runs(id),
            task_id        TEXT NOT NULL DEFAULT '',
            task_hash      TEXT NOT NULL DEFAULT '',
            size           TEXT NOT NULL DEFAULT '',
            candidate_hash TEXT NOT NULL DEFAULT '',
            device_name    TEXT NOT NULL DEFAULT '',
            config_key     TEXT NOT NULL DEFAULT '',
            verdict        TEXT NOT NULL,
            correct        INTEGER NOT NULL,
            speedup        REAL,
            ref_ms         REAL,
            candidate_ms   REAL,
            max_abs_error  REAL,
            findings       TEXT NOT NULL DEFAULT '[]',
            device         TEXT NOT NULL DEFAULT '',
            torch          TEXT NOT NULL DEFAULT '',
            kernels        TEXT NOT NULL DEFAULT '[]',
            build_s        REAL,
            eval_s         REAL,
            details        TEXT NOT NULL DEFAULT '{}',
            created        REAL NOT NULL
        );
        CREATE INDEX verdicts_by_candidate ON verdicts(candidate_id);
        CREATE INDEX verdicts_resume ON verdicts(task_hash, size, candidate_hash, device_name, config_key);
        CREATE INDEX verdicts_by_task ON verdicts(task_id);

        -- Which verdicts belong to a run: the ones it judged and the ones it reused on resume.
        CREATE TABLE run_items (
            run_id     INTEGER NOT NULL REFERENCES runs(id),
            verdict_id INTEGER NOT NULL REFERENCES verdicts(id),
            task_id    TEXT NOT NULL,
            kind       TEXT NOT NULL,          -- 'candidate' or a baseline kind
            reused     INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, task_id, kind, verdict_id)
        );
        CREATE INDEX run_items_by_run ON run_items(run_id);

        CREATE TABLE baselines (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id     INTEGER REFERENCES runs(id),
            task_id    TEXT NOT NULL,
            task_hash  TEXT NOT NULL,
            size       TEXT NOT NULL,
            kind       TEXT NOT NULL,
            verdict_id INTEGER NOT NULL REFERENCES verdicts(id),
            created    REAL NOT NULL
        );
        CREATE INDEX baselines_by_run ON baselines(run_id);

        CREATE TABLE hacks (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            task_id     TEXT NOT NULL,
            source      TEXT NOT NULL,
            source_hash TEXT NOT NULL,
            reason      TEXT NOT NULL,
            origin      TEXT NOT NULL DEFAULT '',
            created     REAL NOT NULL,
            UNIQUE (task_id, source_hash)
        );
        """
    )


def _v2_timing_statistics(db: sqlite3.Connection) -> None:
    """The speedup's 95% interval, each side's coefficient of variation and the judge's floor
    (NULL for verdicts judged before they existed)."""
    for column in ("speedup_low", "speedup_high", "ref_cv", "candidate_cv", "floor_ms"):
        db.execute(f"ALTER TABLE verdicts ADD COLUMN {column} REAL")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1_initial, _v2_timing_statistics]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> int:
    """Bring ``db`` (autocommit connection) to ``SCHEMA_VERSION``; return the version it had."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            db.execute("INSERT INTO schema_version (version) VALUES (0)")
            before = 0
        else:
            before = int(row[0])
        if before > SCHEMA_VERSION:
            raise RuntimeError(
                f"the store was written by a newer cudal1 (schema {before}, this one knows {SCHEMA_VERSION}): "
                "upgrade cudal1 or use another --db"
            )
        for version in range(before, SCHEMA_VERSION):
            for statement in _split(MIGRATIONS[version]):
                db.execute(statement)
            db.execute("UPDATE schema_version SET version = ?", (version + 1,))
        db.execute("COMMIT")
        return before
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _split(migration: Callable[[sqlite3.Connection], None]) -> list[str]:
    """The statements a migration runs, captured so they execute inside our transaction
    (``executescript`` would commit first)."""

    class _Recorder:
        def __init__(self):
            self.statements: list[str] = []

        def executescript(self, script: str) -> None:
            self.statements.extend(s.strip() for s in _statements(script) if s.strip())

        def execute(self, sql: str, *args) -> None:
            if args:
                raise ValueError("migrations run plain statements only")
            self.statements.append(sql)

    rec = _Recorder()
    migration(rec)  # type: ignore[arg-type]
    return rec.statements


def _statements(script: str) -> list[str]:
    out, buf = [], []
    for line in script.splitlines():
        line = line.split("--", 1)[0]
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            out.append("\n".join(buf))
            buf = []
    if "".join(buf).strip():
        out.append("\n".join(buf))
    return out
