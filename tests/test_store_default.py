"""The default store belongs to the working directory (not the whole machine), ``CUDAL1_DB`` and
``--db`` override it, and ``cudal1 report --list`` names the file it read and counts each run's
candidates."""

from __future__ import annotations

import json

import pytest

from cudal1.cli.main import main
from cudal1.judge.verdict import Verdict
from cudal1.store import Candidate, Store, default_db_path
from cudal1.tasks import Task, source_hash

REF = "import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n"


def _task() -> Task:
    return Task(id="level1/9_Double", level=1, name="Double", source=REF, source_hash=source_hash(REF), size="smoke",
                number=9)


def _verdict(speedup: float = 1.5) -> Verdict:
    return Verdict("accepted", True, speedup, 1.0, 1.0 / speedup, 0.0, (), "cpu", "2.x")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh working directory with no CUDAL1_DB."""
    monkeypatch.delenv("CUDAL1_DB", raising=False)
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _bench_run(store: Store, n_candidates: int) -> int:
    """A bench-like run: ``n_candidates`` judged candidates, one of them linked twice (reused),
    plus an eager baseline, which is not a candidate."""
    task = _task()
    store.add_task(task)
    rid = store.start_run("bench", {"candidates": "/somewhere/my_kernels"}, "CPU", "2.x")
    vids = []
    for i in range(n_candidates):
        cid = store.add_candidate(Candidate(task.id, f"class ModelNew: pass  # {i}\n"))
        vids.append(store.add_verdict(cid, _verdict(), rid, task=task, device_name="CPU"))
    if vids:
        store.link_verdict(rid, vids[0], "candidate")  # already linked: counted once
    store.add_baseline(rid, task, "eager", _verdict(1.0), device_name="CPU")
    store.finish_run(rid)
    return rid


def test_default_store_is_per_working_directory(project, tmp_path, monkeypatch):
    assert default_db_path() == project / ".cudal1" / "cudal1.db"
    with Store() as s:
        assert s.path == project / ".cudal1" / "cudal1.db"
        _bench_run(s, 1)
    assert (project / ".cudal1" / "cudal1.db").exists()
    # the folder ignores itself, so running cudal1 in a repository leaves nothing untracked
    assert (project / ".cudal1" / ".gitignore").read_text().splitlines()[-1] == "*"

    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    with Store() as s:
        assert s.path == other / ".cudal1" / "cudal1.db" and s.runs() == []  # no strangers' runs


def test_env_var_and_explicit_path_override_the_default(project, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDAL1_DB", str(tmp_path / "env.db"))
    assert default_db_path() == tmp_path / "env.db"
    with Store() as s:
        assert s.path == tmp_path / "env.db"
    with Store(tmp_path / "flag.db") as s:
        assert s.path == tmp_path / "flag.db"
    assert not (project / ".cudal1").exists()


def test_report_list_names_the_store_and_counts_candidates(project, capsys):
    with Store() as s:
        empty = s.start_run("optimize", {"task": "level1/9_Double"}, "CPU", "2.x")
        three = _bench_run(s, 3)
    assert main(["report", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"store: {project / '.cudal1' / 'cudal1.db'}"
    rows = {int(line.split()[1]): line.split() for line in lines if line.strip().startswith("│ ")
            and line.split()[1].isdigit()}
    assert rows[three][-2] == "3" and rows[empty][-2] == "0"
    assert "/somewhere/my_kernels" not in "\n".join(lines)  # not the bench's config value

    assert main(["report", "--list", "--json"]) == 0
    out = capsys.readouterr()
    assert {r["id"]: r["candidates"] for r in json.loads(out.out)} == {three: 3, empty: 0}
    assert out.err.startswith(f"store: {project / '.cudal1' / 'cudal1.db'}")


def test_report_list_reads_the_db_flag_and_creates_no_store(project, tmp_path, capsys):
    with Store(tmp_path / "elsewhere.db") as s:
        rid = _bench_run(s, 2)
    assert main(["report", "--list", "--db", str(tmp_path / "elsewhere.db"), "--json"]) == 0
    out = capsys.readouterr()
    assert [(r["id"], r["candidates"]) for r in json.loads(out.out)] == [(rid, 2)]
    assert str(tmp_path / "elsewhere.db") in out.err

    assert main(["report", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"store: {project / '.cudal1' / 'cudal1.db'}\n") and "no runs here yet" in out
    assert not (project / ".cudal1").exists()  # listing does not create a store
