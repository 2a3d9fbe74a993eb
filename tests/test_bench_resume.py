"""Kill a bench half-way (SIGKILL to its process group) and run it again: every verdict stored
before the kill is kept and reused, nothing is judged twice, the run id stays the same, and the
finished run has every job."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from test_bench_e2e import DIAG_FAST, SWISH, write_candidates

HARDTANH_OK = '''import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.clamp(x, -1.0, 1.0)
'''
TASKS = "level1/5_Diag_Matmul,level1/19_Swish,level1/21_HardTanh"


def _count_verdicts(db: str) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0  # not created yet


@pytest.mark.timeout(1200)
def test_kill_and_resume_loses_nothing_and_judges_nothing_twice(tmp_path, monkeypatch, capsys):
    from cudal1.cli.main import main

    cands = write_candidates(tmp_path / "cands", {"level1/5_Diag_Matmul": DIAG_FAST, "level1/19_Swish": SWISH,
                                                  "level1/21_HardTanh": HARDTANH_OK})
    db = str(tmp_path / "resume.db")
    env = {**os.environ, "CUDAL1_DB": db, "CUDAL1_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    argv = ["bench", "--candidates", str(cands), "--size", "smoke", "--device", "cpu", "--quick",
            "--baselines", "eager", "--tasks", TASKS, "--build-workers", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "cudal1.cli.main", *argv], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 900
    try:
        while _count_verdicts(db) < 2:
            assert proc.poll() is None, f"bench ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no verdicts stored in time"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _count_verdicts(db)
    assert 2 <= before < 6, "the kill should land half-way (6 jobs: 3 eager baselines, 3 candidates)"
    con = sqlite3.connect(db)
    (run_id, status), = con.execute("SELECT id, status FROM runs").fetchall()
    kept = set(con.execute("SELECT id FROM verdicts").fetchall())
    con.close()
    assert status == "running"  # killed: never finished

    monkeypatch.setenv("CUDAL1_DB", db)
    monkeypatch.setenv("CUDAL1_CACHE", str(tmp_path / "cache"))
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_id"] == run_id and f"resumed run {run_id}" in out["notes"]
    assert out["reused"] == before and out["judged"] == 6 - before
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0] == 6  # nothing judged twice
    assert kept <= set(con.execute("SELECT id FROM verdicts").fetchall())  # nothing lost
    assert con.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == "done"
    assert con.execute("SELECT COUNT(*) FROM run_items WHERE run_id = ?", (run_id,)).fetchone()[0] == 6
    con.close()
    assert {t["task_id"]: t["status"] for t in out["tasks"]} == {
        "level1/5_Diag_Matmul": "accepted", "level1/19_Swish": "accepted", "level1/21_HardTanh": "accepted"}
