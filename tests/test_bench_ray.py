"""The Ray path on CPU: each actor a CPU judge worker; one actor is killed mid-run (ray.kill) and
the bench still completes with every verdict, written by the driver only."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from cudal1.bench.ray_backend import RayBackend  # noqa: E402
from cudal1.bench.runner import BenchOptions, run_bench  # noqa: E402
from cudal1.judge import JudgeConfig  # noqa: E402
from cudal1.store import Store  # noqa: E402
from test_bench_e2e import DIAG_FAST, GEMM_WRONG, SWISH, write_candidates  # noqa: E402

TASKS = "level1/5_Diag_Matmul,level1/19_Swish,level2/1_Gemm_BiasAdd_ReLU"


@pytest.fixture
def local_ray(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CUDAL1_CACHE", str(tmp_path / "cache"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "CUDAL1_CACHE": str(tmp_path / "cache")}})
    yield
    ray.shutdown()


def test_ray_actor_killed_mid_run_is_replaced(tmp_path, local_ray):
    cands = write_candidates(tmp_path / "cands", {"level1/5_Diag_Matmul": DIAG_FAST, "level1/19_Swish": SWISH,
                                                  "level2/1_Gemm_BiasAdd_ReLU": GEMM_WRONG})
    store = Store(tmp_path / "ray.db")
    config = JudgeConfig.quick()
    backend = RayBackend("auto", config, workers=2)
    killed = []

    def kill_one(event):
        if event.phase == "result" and not killed:
            victim = backend.actors[0]
            ray.kill(victim, no_restart=True)
            killed.append(victim)

    options = BenchOptions(candidates=str(cands), size="smoke", device="cpu", baselines=("eager",), tasks=TASKS)
    result = run_bench(options, store, config=config, progress=kill_one, backend=backend)
    assert killed and backend.replaced >= 1
    assert result.status == "done" and not result.failures
    assert result.judged == 6 and len(store.run_results(result.run_id)) == 6
    status = {r.task_id: r.status for r in result.results}
    assert status == {"level1/5_Diag_Matmul": "accepted", "level1/19_Swish": "accepted",
                      "level2/1_Gemm_BiasAdd_ReLU": "incorrect"}
    assert all(r.baselines["eager"].accepted for r in result.results)

    backend.shutdown()  # frees the cluster's CPUs for the next backend's actors
    # the --ray path of the runner builds its own backend on the running cluster; all reused
    again = run_bench(BenchOptions(candidates=str(cands), size="smoke", device="cpu", baselines=("eager",),
                                   tasks=TASKS, ray="auto"), store, config=config)
    assert again.judged == 0 and again.reused == 6
