"""The cost model: plans that keep the reference's work are bounded by its roofline time, and
optimize leaves out those that cannot beat the judge's reference time (and says so)."""

from __future__ import annotations

import json

import pytest
import torch

from cudal1.analysis.roofline import Peaks, TaskWork, peaks_key, roofline_ms
from cudal1.judge.device import device_name
from cudal1.policies.base import Context
from cudal1.policies.rules import cost
from cudal1.policies.rules.policy import RulesPolicy
from cudal1.search import SearchOptions, optimize
from cudal1.store import Store
from cudal1.tasks import resolve_task

# 1 GFLOP of fp32 matmul over 100 MB: 10 ms at 100 GFLOP/s on CUDA cores, 1.25 ms at 800 on TF32,
# 1 ms of memory at 100 GB/s.
WORK = TaskWork("t", "full", matmul_flops=10**9, conv_flops=0, vector_flops=0, input_bytes=50 * 10**6,
                weight_bytes=0, output_bytes=50 * 10**6, dtype="fp32", method="meta")
PEAKS = Peaks("Test GPU", "2.x", flops={"fp32": 1e11, "tf32": 8e11}, bandwidth=1e11)


def test_bounds_follow_the_roofline_at_the_plans_precision():
    assert roofline_ms(WORK, PEAKS) == pytest.approx(10.0)
    assert cost.speedup_bound(("compile-default",), 10.5, WORK, PEAKS) == pytest.approx(1.05)
    assert cost.speedup_bound(("fuse",), 30.0, WORK, PEAKS) == pytest.approx(3.0)
    assert cost.speedup_bound(("tf32",), 10.5, WORK, PEAKS) == pytest.approx(8.4)
    assert cost.speedup_bound(("simplify",), 10.5, WORK, PEAKS) is None  # removes work: no bound


def test_graph_plans_pay_for_copying_inputs_in_and_outputs_out():
    # 50 MB in, 50 MB out, each read and written once more: 200 MB at 100 GB/s = 2 ms.
    assert cost.graph_copies_ms(WORK, PEAKS) == pytest.approx(2.0)
    assert cost.speedup_bound(("cudagraph",), 10.5, WORK, PEAKS) == pytest.approx(10.5 / 12.0)
    assert cost.speedup_bound(("fuse", "cudagraph"), 30.0, WORK, PEAKS) == pytest.approx(2.5)
    assert cost.speedup_bound(("tf32", "cudagraph"), 10.5, WORK, PEAKS) == pytest.approx(10.5 / 3.25)
    # simplify removes work but not the copies: bounded by them alone.
    assert cost.speedup_bound(("simplify", "cudagraph"), 10.5, WORK, PEAKS) == pytest.approx(5.25)
    # A memory-bound task near its roofline: graph replay of it cannot win (a softmax ran at 0.21x).
    stream = TaskWork("s", "full", 0, 0, 10**8, 4 * 10**8, 0, 4 * 10**8, "fp32", "meta")  # 8 ms of memory
    assert cost.skipped(("fuse", "cudagraph"), 12.0, stream, PEAKS).at_most == pytest.approx(0.5)  # 12 / (8 + 16)
    assert cost.skipped(("fuse",), 12.0, stream, PEAKS) is None  # 1.5x still possible


def test_only_plans_bounded_below_min_gain_are_skipped():
    near = cost.skipped(("compile-default",), 10.5, WORK, PEAKS)
    assert near is not None and near.at_most == pytest.approx(1.05)
    assert "compile-default: at most 1.05x" in near.reason() and "95% of the roofline" in near.reason()
    assert cost.skipped(("compile-default",), 11.5, WORK, PEAKS) is None  # 1.15x is still possible
    assert cost.skipped(("tf32", "cudagraph"), 10.5, WORK, PEAKS) is None
    assert cost.skipped(("simplify",), 10.0, WORK, PEAKS) is None
    # Without a figure the model skips nothing.
    assert cost.skipped(("cudagraph",), None, WORK, PEAKS) is None
    assert cost.skipped(("cudagraph",), 10.5, None, PEAKS) is None
    assert cost.skipped(("cudagraph",), 10.5, WORK, None) is None


def test_reference_time_is_the_median_of_the_verdicts_that_have_one():
    class V:
        def __init__(self, ref_ms):
            self.ref_ms = ref_ms

    assert cost.reference_ms([V(3.0), V(None), V(1.0), V(2.0)]) == 2.0
    assert cost.reference_ms([V(None)]) is None and cost.reference_ms([]) is None


TASK = "level2/3_Gemm_GELU_Sum_Softmax"  # on a CPU the rules propose simplify and fuse


def _peaks_cache(tmp_path, monkeypatch, flops: float, bandwidth: float):
    monkeypatch.setenv("CUDAL1_CACHE", str(tmp_path))
    name = device_name("cpu")
    (tmp_path / "peaks.json").write_text(json.dumps({peaks_key(name, torch.__version__): Peaks(
        name, torch.__version__, {"fp32": flops}, bandwidth).to_json()}))


def test_policy_drops_work_keeping_plans_only_when_the_reference_is_at_the_roofline():
    task = resolve_task(TASK, size="smoke")
    policy = RulesPolicy()
    assert [p.name for p in policy.ordered_plans(task, Context(device="cpu"))] == ["simplify", "fuse"]
    policy.peaks = Peaks("cpu", "2.x", {"fp32": 1e3}, 1e3)  # a roofline of minutes: every reference is "at" it
    assert [p.name for p in policy.ordered_plans(task, Context(device="cpu", reference_ms=1.0))] == ["simplify"]
    assert [s.plan for s in policy.skipped] == ["fuse"]
    assert [p.name for p in policy.ordered_plans(task, Context(device="cpu"))] == ["simplify", "fuse"]  # time unknown
    policy.peaks = Peaks("cpu", "2.x", {"fp32": 1e18}, 1e18)  # a roofline of nothing: any plan may win
    assert [p.name for p in policy.ordered_plans(task, Context(device="cpu", reference_ms=1.0))] == ["simplify", "fuse"]


def test_optimize_uses_the_stores_reference_time_and_says_what_it_left_out(tmp_path, monkeypatch, judge_cache):
    """Real judge on the CPU: the first run judges simplify (its verdict holds the reference's
    time); the second, with cached peaks that put every reference at the roofline, leaves fuse
    out and explains the unspent budget."""
    from cudal1.judge import JudgeConfig

    _peaks_cache(tmp_path, monkeypatch, flops=1e3, bandwidth=1e3)
    task = resolve_task(TASK, size="smoke")
    store = Store(tmp_path / "db.sqlite")
    config = JudgeConfig.quick(cache_dir=judge_cache)
    first = optimize(task, RulesPolicy(), SearchOptions(device="cpu", size="smoke", budget=1, out_dir=str(tmp_path / "a")),
                     store=store, judge_config=config)
    assert [t.strategy for t in first.tried] == ["simplify"] and first.tried[0].verdict.ref_ms
    said = []
    second = optimize(task, RulesPolicy(), SearchOptions(device="cpu", size="smoke", budget=4, out_dir=str(tmp_path / "b")),
                      store=store, judge_config=config, progress=said.append)
    assert second.tried == [] or all(t.strategy != "fuse" for t in second.tried)
    assert "fuse" in second.skipped and second.skipped["fuse"] < cost.MIN_GAIN
    assert any(m.startswith("not judged (cost model): fuse: at most") for m in said)
    assert "could not beat it (fuse (at most" in second.message()
    assert json.loads((tmp_path / "b" / "report.json").read_text())["skipped_by_cost_model"].keys() == {"fuse"}
