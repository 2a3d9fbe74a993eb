"""Ablation with the real judge (CPU, smoke size) of a candidate the optimizer composed."""

from __future__ import annotations

import json

import pytest

from cudal1.tasks import resolve_task


@pytest.mark.slow
def test_explain_composed_candidate_on_cpu(tmp_path, capsys, monkeypatch):
    from cudal1.cli.main import main
    from cudal1.policies.rules import Plan, RulesPolicy

    monkeypatch.setenv("CUDAL1_CACHE", str(tmp_path / "cache"))
    # The built-in task with sizes between smoke and full: big enough (a 1 GFLOP matmul against
    # a 0.5M-element multiply) that the simplification's worth is far above CPU timing noise.
    builtin = resolve_task("level1/5_Diag_Matmul", size="smoke")
    task_file = tmp_path / "level1" / "5_Diag_Matmul.py"
    task_file.parent.mkdir()
    task_file.write_text(builtin.source.replace('SMOKE = {"N": 128, "M": 96}', 'SMOKE = {"N": 1024, "M": 512}'))
    assert task_file.read_text() != builtin.source
    task = resolve_task(str(task_file), size="smoke")
    pol = RulesPolicy()
    proposal = pol.build(pol.traced(task), Plan(("simplify", "channels-last")), "cpu")
    assert proposal is not None and proposal.components == ("simplify", "channels-last")
    path = tmp_path / "candidate.py"
    path.write_text(proposal.source)
    rc = main(["explain", str(path), "--task", str(task_file), "--size", "smoke", "--device", "cpu", "--quick",
               "--db", str(tmp_path / "s.db"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out["verdict"]
    assert out["verdict"]["verdict"] == "accepted"
    assert {"algebraic-simplification", "channels-last", "cudnn-benchmark"} <= {t["id"] for t in out["tags"]}
    rows = {r["technique"]: r for r in out["rows"]}
    # one row per component; cudnn.benchmark comes with channels-last, so it is not ablated twice
    assert list(rows) == ["simplify", "channels-last"]
    for r in rows.values():
        assert r["with_speedup"] == out["verdict"]["speedup"]
        assert r["without_verdict"] == "accepted" and r["without_speedup"] > 0
        assert r["contribution"] == pytest.approx(r["with_speedup"] / r["without_speedup"])
        assert r["hurts"] == (r["contribution"] < 1.0)
    # diag(a) @ B as a broadcast multiply: the simplification is what makes it fast
    assert rows["simplify"]["contribution"] > 2.0
