"""End to end on CPU: a candidates folder (correct, broken, hacking, missing) benched with the real
judge at smoke size; counts and statistics; the CLI on the same store (everything reused);
export/import round trip; the one-error report for files that match no task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cudal1.bench.runner import BenchError, BenchOptions, load_run, run_bench
from cudal1.bench.stats import select
from cudal1.judge import JudgeConfig
from cudal1.store import Store

SUBSET = ["level1/5_Diag_Matmul", "level1/19_Swish", "level1/21_HardTanh", "level1/24_Sum_Reduction",
          "level2/1_Gemm_BiasAdd_ReLU", "level3/1_MLP"]

DIAG_FAST = '''import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, B):
        return a.unsqueeze(1) * B
'''

SWISH = '''import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.nn.functional.silu(x)
'''

HARDTANH_MUTATES_INPUT = '''import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x.clamp_(-1.0, 1.0)
'''

GEMM_WRONG = '''import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.gemm = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.randn(out_features) * 0.1)

    def forward(self, x):
        return self.gemm(x) + self.bias  # forgets the ReLU
'''

MLP_SYNTAX_ERROR = '''import torch
class ModelNew(torch.nn.Module)
    pass
'''

CANDIDATES = {
    "level1/5_Diag_Matmul": DIAG_FAST,
    "level1/19_Swish": SWISH,
    "level1/21_HardTanh": HARDTANH_MUTATES_INPUT,
    "level2/1_Gemm_BiasAdd_ReLU": GEMM_WRONG,
    "level3/1_MLP": MLP_SYNTAX_ERROR,
    # level1/24_Sum_Reduction: no candidate (missing)
}


def write_candidates(folder: Path, candidates: dict[str, str]) -> Path:
    for tid, src in candidates.items():
        f = folder / f"{tid}.py"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(src)
    return folder


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    cands = write_candidates(tmp / "cands", CANDIDATES)
    store = Store(tmp / "bench.db")
    config = JudgeConfig.quick(cache_dir=str(tmp / "cache"))
    events = []
    result = run_bench(BenchOptions(candidates=str(cands), size="smoke", device="cpu", baselines=("eager",),
                                    tasks=",".join(SUBSET), build_workers=1), store, config=config,
                       progress=events.append)
    return tmp, store, result, events


def test_counts_and_verdicts(bench):
    _, _, result, events = bench
    by_id = {r.task_id: r for r in result.results}
    assert sorted(by_id) == sorted(SUBSET)
    assert by_id["level1/24_Sum_Reduction"].status == "missing"
    assert result.missing == ["level1/24_Sum_Reduction"]
    assert by_id["level1/5_Diag_Matmul"].status == "accepted"
    assert by_id["level1/19_Swish"].status == "accepted"
    assert by_id["level2/1_Gemm_BiasAdd_ReLU"].status == "incorrect"
    assert by_id["level3/1_MLP"].status == "build_error"
    hack = by_id["level1/21_HardTanh"]
    assert hack.status in ("rejected", "incorrect"), hack.verdict
    # every task got its eager baseline, judged like a candidate
    assert all("eager" in r.baselines for r in result.results)
    eager = [r.baselines["eager"] for r in result.results]
    assert all(v.accepted for v in eager), [v.verdict for v in eager]
    # progress: one start event, one result per job (6 baselines + 5 candidates)
    assert events[0].phase == "start" and events[0].total == 11
    assert [e.done for e in events[1:]] == list(range(1, 12))
    assert result.judged == 11 and result.reused == 0 and result.status == "done"


def test_statistics_match_the_verdicts(bench):
    _, _, result, _ = bench
    stats = result.statistics()
    overall = select(stats, view="raw", against="eager", group="all")[0]
    assert (overall.tasks, overall.valid) == (6, 2)
    speedups = sorted(r.verdict.speedup for r in result.results if r.accepted)
    assert overall.max == speedups[-1]
    assert overall.mean == pytest.approx(sum(speedups) / 2)
    fb = select(stats, view="fallback", against="eager", group="all")[0]
    assert fb.mean == pytest.approx((sum(max(s, 1.0) for s in speedups) + 4) / 6)
    l3 = select(stats, view="fallback", against="eager", group="level3")[0]
    assert (l3.tasks, l3.valid, l3.mean) == (1, 0, 1.0)
    assert overall.fast_p["fast_0"] == pytest.approx(2 / 6)


def test_store_has_everything_and_reload_matches(bench):
    _, store, result, _ = bench
    again = load_run(store, result.run_id, tasks=None)
    # reloaded without the task list: the missing task has only its baseline
    assert {r.task_id: r.status for r in again.results} == {r.task_id: r.status for r in result.results}
    assert store.run(result.run_id).status == "done"
    assert len(store.baselines(result.run_id)) == 6


def test_cli_rerun_reuses_every_verdict(bench, capsys):
    from cudal1.cli.main import main

    tmp, store, result, _ = bench
    code = main(["bench", "--candidates", str(tmp / "cands"), "--size", "smoke", "--device", "cpu", "--quick",
                 "--db", str(store.path), "--baselines", "eager", "--tasks", "level1/5_*", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["judged"] == 0 and out["reused"] == 2
    assert [t["task_id"] for t in out["tasks"]] == ["level1/5_Diag_Matmul"]
    assert out["tasks"][0]["verdict"]["verdict"] == "accepted"


def test_export_and_import_round_trip(bench, tmp_path):
    from cudal1.cli.main import main

    _, store, result, _ = bench
    out = tmp_path / "ours.jsonl"
    assert main(["export", str(result.run_id), "--jsonl", str(out), "--db", str(store.path)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    diag = next(r for r in rows if r["level_id"] == 1 and r["task_id"] == 5)
    assert diag["custom_code"] == DIAG_FAST and diag["score_default"] == pytest.approx(
        next(r.verdict.speedup for r in result.results if r.task_id == "level1/5_Diag_Matmul"), abs=1e-4)
    missing = next(r for r in rows if r["task_id"] == 24)
    assert missing["custom_code"] is None and missing["score_default"] is None
    back = tmp_path / "imported"
    assert main(["import", str(out), "--out", str(back)]) == 0
    assert (back / "level1" / "5_Diag_Matmul.py").read_text() == DIAG_FAST
    assert not (back / "level1" / "24_Sum_Reduction.py").exists()


def test_files_matching_no_task_are_one_error(tmp_path, capsys):
    from cudal1.cli.main import main

    cands = write_candidates(tmp_path / "c", {"level1/19_Swish": SWISH, "level1/999_Nope": SWISH,
                                              "level7/1_Other": SWISH})
    (cands / "stray.py").write_text("x = 1\n")
    with pytest.raises(BenchError) as e:
        run_bench(BenchOptions(candidates=str(cands), size="smoke", device="cpu"), Store(tmp_path / "x.db"))
    msg = str(e.value)
    assert "3 file(s)" in msg and "level1/999_Nope.py" in msg and "level7/1_Other.py" in msg and "stray.py" in msg
    code = main(["bench", "--candidates", str(cands), "--size", "smoke", "--device", "cpu", "--db", str(tmp_path / "x.db")])
    assert code == 2
    assert "match no task" in capsys.readouterr().err
