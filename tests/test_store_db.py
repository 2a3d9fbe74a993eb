"""Store: schema, round trips, resume lookup, history/best, hacks, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3

import pytest

from cudal1.judge.verdict import Finding, KernelShare, Verdict, VerdictDetails
from cudal1.store import SCHEMA_VERSION, Candidate, Store, config_key
from cudal1.store import migrations
from cudal1.store.records import Baseline, Hack
from cudal1.tasks import Task, source_hash

REF = "import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n"


def _task(size="smoke", source=REF, tid="level1/9_Double") -> Task:
    return Task(id=tid, level=1, name="Double", source=source, source_hash=source_hash(source), size=size, number=9)


def _verdict(kind="accepted", speedup=1.5, details=None) -> Verdict:
    return Verdict(
        verdict=kind, correct=kind == "accepted", speedup=speedup if kind == "accepted" else None,
        ref_ms=1.0, candidate_ms=1.0 / speedup if kind == "accepted" else None, max_abs_error=0.0,
        findings=(Finding("side-stream", "warn", "msg"),), device="cpu", torch="2.x",
        kernels=(KernelShare("k", 0.5, 3),), build_s=0.1, eval_s=0.2, details=details or {"spread": 0.01},
    )


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "c.db") as s:
        yield s


def test_schema_is_migrated_and_wal(store):
    assert store.schema_version() == SCHEMA_VERSION
    mode = store._query("PRAGMA journal_mode")[0][0]
    assert mode.lower() == "wal"


def test_migrations_apply_only_missing_steps(tmp_path, monkeypatch):
    path = tmp_path / "m.db"
    Store(path).close()
    calls = []

    def _v2(db):
        calls.append(1)
        db.execute("ALTER TABLE hacks ADD COLUMN severity TEXT NOT NULL DEFAULT 'high'")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, _v2])
    top = len(migrations.MIGRATIONS)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", top)
    s = Store(path)
    assert s.schema_version() == top and calls == [1]
    s.close()
    Store(path).close()  # already at the top: nothing re-applied
    assert calls == [1]
    cols = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(hacks)")]
    assert "severity" in cols


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "n.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="newer cudal1"):
        Store(path)


def test_env_var_selects_db(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDAL1_DB", str(tmp_path / "env.db"))
    with Store() as s:
        assert s.path == tmp_path / "env.db"
    assert (tmp_path / "env.db").exists()


def test_candidate_and_verdict_round_trip(store):
    task = _task()
    store.add_task(task)
    store.add_task(task)  # idempotent
    assert store.task(task.id, "smoke") == task
    cand = Candidate(task.id, "class ModelNew: pass\n", policy="opt", strategy="fuse", parents=(1, 2),
                     prompt="p", response="r", template_version="v1", notes="n", meta={"a": 1}, tags=("x",))
    cid = store.add_candidate(cand)
    got = store.candidate(cid)
    assert got == cand and got.meta == {"a": 1} and got.tags == ("x",)
    v = _verdict()
    vid = store.add_verdict(cid, v, task=task, config_key="k1", device_name="TestCPU")
    back = store.verdict(vid)
    assert back == v and back.details == v.details
    assert store.find_verdict(task.source_hash, "smoke", cand.source_hash, "TestCPU", "k1") == v
    # every part of the key matters
    assert store.find_verdict(task.source_hash, "full", cand.source_hash, "TestCPU", "k1") is None
    assert store.find_verdict(task.source_hash, "smoke", cand.source_hash, "OtherGPU", "k1") is None
    assert store.find_verdict(task.source_hash, "smoke", cand.source_hash, "TestCPU", "k2") is None
    store.set_tags(cid, ["cuda-graph"])
    assert store.candidate(cid).tags == ("cuda-graph",)


def test_verdict_details_are_typed_and_keep_unknown_keys(store):
    raw = {"sandbox": "basic", "ref_times_ms": [1.0, 2.0], "strict_tol_ok": False,
           "remeasured": {"device": "cpu", "speedup": 1.2}, "from_another_judge": {"x": 1}}
    d = VerdictDetails.from_json(raw)
    assert (d.sandbox, d.ref_times_ms, d.strict_tol_ok, d.error) == ("basic", (1.0, 2.0), False, None)
    assert d.extra == {"from_another_judge": {"x": 1}}
    assert d.to_json() == raw and VerdictDetails.from_json(json.loads(json.dumps(d.to_json()))) == d
    v = _verdict(details=raw)  # a mapping, as older callers pass it, becomes the record
    assert v.details == d and Verdict.loads(v.dumps()).details == d
    # a row stored by an earlier version (details as a JSON object) loads, unknown keys kept
    task = _task()
    cid = store.add_candidate(Candidate(task.id, "old"))
    vid = store.add_verdict(cid, _verdict(), task=task)
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE verdicts SET details = ? WHERE id = ?", (json.dumps(raw), vid))
    assert store.verdict(vid).details == d


def test_resume_key_from_verdict_details(store):
    task = _task()
    cid = store.add_candidate(Candidate(task.id, "src"))
    v = _verdict(details={"task_hash": task.source_hash, "size": "smoke", "config_key": "kk", "device_name": "Dev"})
    store.add_verdict(cid, v)
    assert store.find_verdict(task.source_hash, "smoke", source_hash("src"), "Dev", "kk") is not None


def test_history_and_best(store):
    task = _task()
    ids = []
    for src, v in [("a", _verdict(speedup=1.2)), ("b", _verdict("incorrect")), ("c", _verdict(speedup=2.5)),
                   ("d", _verdict(speedup=1.9))]:
        cid = store.add_candidate(Candidate(task.id, src, strategy=src))
        store.add_verdict(cid, v, task=task, device_name="Dev")
        ids.append(cid)
    store.add_baseline(None, task, "compile", _verdict(speedup=9.0), device_name="Dev")
    hist = store.history(task.id)
    assert [a.source for a in hist] == ["a", "b", "c", "d"]  # baselines excluded, oldest first
    assert hist[0].candidate_id == ids[0]
    best = store.best(task.id, device="Dev")
    assert best.source == "c" and best.speedup == 2.5
    assert store.history(task.id, device="Nope") == []
    assert store.best("level1/0_None") is None
    assert len(store.history(task.id, size="smoke")) == 4


def test_runs_results_and_baselines(store):
    task = _task()
    rid = store.start_run("bench", {"suite": "builtin"}, "Dev", "2.x")
    assert store.run(rid).status == "running"
    cid = store.add_candidate(Candidate(task.id, "a"))
    vid = store.add_verdict(cid, _verdict(), rid, task=task, device_name="Dev")
    store.add_baseline(rid, task, "eager", _verdict(speedup=1.0), device_name="Dev")
    rid2 = store.start_run("bench", {"suite": "builtin"}, "Dev", "2.x")
    store.link_verdict(rid2, vid)
    res = store.run_results(rid)
    assert [r.kind for r in res] == ["candidate", "baseline:eager"]
    assert res[0].level == 1 and res[0].verdict.speedup == 1.5 and not res[0].reused
    res2 = store.run_results(rid2)
    assert len(res2) == 1 and res2[0].reused and res2[0].verdict_id == vid
    assert store.baselines(rid) == [Baseline(task.id, "eager", _verdict(speedup=1.0))]
    store.finish_run(rid)
    assert store.run(rid).status == "done" and store.run(rid).finished is not None
    assert [r.id for r in store.runs("bench")] == [rid2, rid]
    # every record the store returns survives a JSON round trip
    for record in [*res, *res2, *store.baselines(rid), *store.runs()]:
        assert type(record).from_json(json.loads(json.dumps(record.to_json()))) == record


def test_resumable_run(store):
    cfg = {"suite": "x", "tasks": "*"}
    rid = store.start_run("bench", cfg, "Dev", "2.x")
    # our own pid is alive, but it is our own run: resumable
    assert store.resumable_run("bench", cfg) == rid
    assert store.resumable_run("bench", {"suite": "y"}) is None
    store.finish_run(rid, "interrupted")
    assert store.resumable_run("bench", cfg) == rid
    store.reopen_run(rid)
    store.finish_run(rid)
    assert store.resumable_run("bench", cfg) is None


def test_hacks_case_base(store):
    h1 = store.add_hack("level1/9_Double", "src1", "side stream", "judge")
    h2 = store.add_hack("level1/9_Double", "src1", "side stream again", "judge")
    store.add_hack("level1/9_Double", "src2", "lazy tensor", "human")
    assert h1 == h2
    hacks = store.hacks()
    assert [h.reason for h in hacks] == ["side stream", "lazy tensor"]
    assert hacks[0].source_hash == source_hash("src1")
    assert [h.reason for h in store.hacks("level1/0_Other")] == []
    assert Hack.from_json(json.loads(json.dumps(hacks[1].to_json()))) == hacks[1]


def test_config_key_ignores_cache_settings():
    from cudal1.judge import JudgeConfig

    a = JudgeConfig.quick()
    assert config_key(a) == config_key(JudgeConfig.quick(cache_dir="/elsewhere"))
    assert config_key(a) != config_key(JudgeConfig.quick(trials=3))
    assert config_key(a) == config_key(a.to_json())


def _writer(path: str, worker: int, n: int) -> None:
    s = Store(path)
    task = _task()
    for i in range(n):
        cid = s.add_candidate(Candidate(task.id, f"w{worker}-{i}"))
        s.add_verdict(cid, _verdict(speedup=1.0 + i), task=task, device_name=f"w{worker}")
    s.close()


def test_concurrent_writer_processes(tmp_path):
    path = str(tmp_path / "conc.db")
    Store(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with Store(path) as s:
        assert s._query("SELECT COUNT(*) FROM candidates")[0][0] == 100
        assert s._query("SELECT COUNT(*) FROM verdicts")[0][0] == 100
        for w in range(4):
            assert len(s.history("level1/9_Double", device=f"w{w}")) == 25


def test_verdict_without_task_takes_the_recorded_task(store):
    task = _task()
    store.add_task(task)
    cid = store.add_candidate(Candidate(task.id, "src"))
    store.add_verdict(cid, _verdict())  # as a search loop would: no task, no details
    assert len(store.history(task.id, size="smoke")) == 1
    assert store.find_verdict(task.source_hash, "smoke", source_hash("src"), "cpu", "") is not None
