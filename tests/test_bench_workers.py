"""LocalBackend with several devices: one worker thread per device pulling batches from a shared
queue. On CPU the 'devices' are two CPU workers; every job's verdict must come back under its own
index exactly once (the GPU form, cuda:0..N-1, is run by benchmarks/gpu_bench_smoke.sh)."""

from __future__ import annotations

import threading

from cudal1.bench.baselines import baseline_source
from cudal1.bench.workers import LocalBackend, local_devices
from cudal1.judge import JudgeConfig
from cudal1.tasks import load_suite
from test_bench_e2e import GEMM_WRONG, SWISH

import pytest


def test_local_devices():
    assert local_devices("cuda", 3) == ["cuda:0", "cuda:1", "cuda:2"]
    assert local_devices("cpu", 1) == ["cpu"]
    with pytest.raises(ValueError, match="needs CUDA"):
        local_devices("cpu", 2)


def test_two_workers_return_every_verdict_under_its_index(tmp_path):
    tasks = {t.id: t for t in load_suite("builtin", size="smoke").tasks}
    swish, gemm = tasks["level1/19_Swish"], tasks["level2/1_Gemm_BiasAdd_ReLU"]
    jobs = [(swish, SWISH), (gemm, GEMM_WRONG), (swish, baseline_source(swish, "eager")), (gemm, "class Broken(")]
    backend = LocalBackend(["cpu", "cpu"], JudgeConfig.quick(cache_dir=str(tmp_path)), build_workers=1, batch=1)
    got, threads = {}, set()

    def on_result(i, v):
        assert i not in got
        got[i] = v.verdict
        threads.add(threading.current_thread().name)

    assert backend.run(jobs, on_result) == []
    assert got == {0: "accepted", 1: "incorrect", 2: "accepted", 3: "build_error"}
    assert threads == {"judge-0-cpu", "judge-1-cpu"}  # both workers took jobs
    assert backend.device_name()
