"""A bench checks which selected tasks its candidates cover before anything is judged: none is
an error naming the candidates, the tasks and the flags to change (no run is started); some
missing is said when judging starts. The backend is a stand-in: nothing here measures."""

from __future__ import annotations

import pytest

from cudal1.bench.runner import BenchError, BenchOptions, run_bench
from cudal1.cli.main import main
from cudal1.judge.verdict import Verdict
from cudal1.store import Store

SWISH = "import torch\nclass ModelNew(torch.nn.Module):\n    def forward(self, x):\n        return torch.nn.functional.silu(x)\n"


class _InstantBackend:
    """Accepts every job at once; fails the test if asked to judge when it should not be."""

    def __init__(self, *args, **kwargs):
        self.jobs = None

    def device_name(self):
        return "Stand-in CPU"

    def run(self, jobs, on_result):
        self.jobs = list(jobs)
        for i, _ in enumerate(jobs):
            on_result(i, Verdict("accepted", True, 1.0, 1.0, 1.0, 0.0, (), "cpu", "2.x", speedup_ci=(0.9, 1.1)))
        return []

    def shutdown(self):
        pass


@pytest.fixture
def swish_only(tmp_path):
    folder = tmp_path / "my_kernels"
    (folder / "level1").mkdir(parents=True)
    (folder / "level1" / "19_Swish.py").write_text(SWISH)
    return folder


def test_candidates_covering_no_selected_task_fail_before_judging(tmp_path, swish_only):
    store = Store(tmp_path / "b.db")
    backend = _InstantBackend()
    with pytest.raises(BenchError) as e:
        run_bench(BenchOptions(candidates=str(swish_only), size="smoke", device="cpu", tasks="level1/5_*"),
                  store, backend=backend)
    msg = str(e.value)
    assert f"--candidates {swish_only} has no candidate for any of the 1 selected task(s)" in msg
    assert "level1/5_Diag_Matmul" in msg and "--tasks 'level1/5_*'" in msg
    assert "level1/19_Swish" in msg  # what it does cover
    assert backend.jobs is None and store.runs() == []  # nothing judged, no run recorded


def test_an_empty_candidates_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="holds no candidate at all"):
        run_bench(BenchOptions(candidates=str(tmp_path / "empty"), size="smoke", device="cpu", level=1),
                  Store(tmp_path / "b.db"), backend=_InstantBackend())


def test_a_baselines_only_bench_is_not_an_error(tmp_path):
    events = []
    result = run_bench(BenchOptions(size="smoke", device="cpu", tasks="level1/19_*"), Store(tmp_path / "b.db"),
                       backend=_InstantBackend(), progress=events.append)
    assert events[0].phase == "start" and events[0].missing == ()
    assert result.missing == ["level1/19_Swish"]


def test_some_missing_is_said_up_front(tmp_path, swish_only):
    events = []
    result = run_bench(BenchOptions(candidates=str(swish_only), size="smoke", device="cpu",
                                    tasks="level1/19_*,level1/5_*"), Store(tmp_path / "b.db"),
                       backend=_InstantBackend(), progress=events.append)
    assert events[0].phase == "start" and events[0].missing == ("level1/5_Diag_Matmul",)
    assert result.missing == ["level1/5_Diag_Matmul"]


def test_cli_fails_fast_and_warns_up_front(tmp_path, swish_only, monkeypatch, capsys):
    import cudal1.bench.workers

    monkeypatch.setattr(cudal1.bench.workers, "LocalBackend", _InstantBackend)
    db = str(tmp_path / "b.db")
    argv = ["bench", "--candidates", str(swish_only), "--size", "smoke", "--device", "cpu", "--db", db]
    assert main([*argv, "--tasks", "level1/5_*"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "has no candidate for any of the 1 selected task(s)" in err and "level1/5_Diag_Matmul" in err
    assert "--tasks" in err and "--candidates" in err

    assert main([*argv, "--tasks", "level1/19_*,level1/5_*", "--json"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"1 selected task(s) have no candidate in {swish_only}" in err and "level1/5_Diag_Matmul" in err
