"""Judging on a Ray cluster: each GPU an actor (on a CPU-only cluster, each actor a CPU worker).

Ray is an extra (``pip install "cudal1[ray]"``), imported only here. The driver process keeps
the queue and is the only writer of the store: actors return verdicts as JSON records. An
actor that dies (node lost, OOM-killed, ``ray.kill``) is replaced and its batch re-queued; a
batch whose actors die ``max_retries`` times in a row is reported as a failure (not as a
verdict: nothing was measured).
"""

from __future__ import annotations

import logging
from collections import deque

from ..judge.verdict import Verdict
from ..tasks.contract import Task
from .workers import JobFailure, OnResult

log = logging.getLogger(__name__)


def import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError('the Ray backend needs ray: pip install "cudal1[ray]" (or "ray[default]")') from None
    return ray


class JudgeActorImpl:
    """The body of a judge actor: evaluates batches on its one device."""

    def __init__(self, device: str, config_json: dict, build_workers: int):
        from ..judge.config import JudgeConfig
        from ..judge.device import resolve_device

        self.device = resolve_device(device)
        self.config = JudgeConfig.from_json(config_json)
        self.build_workers = build_workers

    def device_name(self) -> str:
        from ..judge import Judge

        return Judge(self.device, self.config).device_name

    def pid(self) -> int:
        import os

        return os.getpid()

    def evaluate_batch(self, jobs: list[tuple[dict, str]]) -> list[dict]:
        from ..judge import evaluate_many

        tasks = [(Task.from_json(t), source) for t, source in jobs]
        verdicts = evaluate_many(tasks, device=self.device, config=self.config, build_workers=self.build_workers)
        return [v.to_record() for v in verdicts]


class RayBackend:
    """``address``: ``"auto"``/``"local"`` starts a local cluster (``ray.init()``), anything else
    is passed to ``ray.init(address=...)``. ``workers``: number of actors (default: the cluster's
    GPUs, or 2 CPU workers when it has none)."""

    def __init__(self, address: str, config, workers: int | None = None, build_workers: int = 1,
                 batch: int = 1, max_retries: int = 3, init_kwargs: dict | None = None, start_timeout_s: float = 300.0):
        self.ray = import_ray()
        self.address = address
        self.config = config
        self.build_workers = max(1, build_workers)
        self.batch = max(1, batch)
        self.max_retries = max_retries
        self.start_timeout_s = start_timeout_s
        if not self.ray.is_initialized():
            kwargs = dict(init_kwargs or {})
            if address not in ("auto", "local", ""):
                kwargs["address"] = address
            self.ray.init(**kwargs)
        gpus = int(self.ray.cluster_resources().get("GPU", 0))
        self.use_gpus = gpus > 0
        self.workers = workers or (gpus if gpus else 2)
        self.device = "cuda" if self.use_gpus else "cpu"
        opts = {"num_gpus": 1, "num_cpus": 1} if self.use_gpus else {"num_cpus": 1}
        self._actor_cls = self.ray.remote(max_restarts=0, **opts)(JudgeActorImpl)
        self.actors = [self._new_actor() for _ in range(self.workers)]
        self.replaced = 0

    def _new_actor(self):
        return self._actor_cls.remote(self.device, self.config.to_json(), self.build_workers)

    def device_name(self) -> str:
        """The device name all actors share (a bench compares like with like)."""
        try:
            names = set(self.ray.get([a.device_name.remote() for a in self.actors], timeout=self.start_timeout_s))
        except self.ray.exceptions.GetTimeoutError:
            raise ValueError(
                f"{len(self.actors)} judge actor(s) did not start within {self.start_timeout_s:.0f} s: the cluster lacks "
                f"free {'GPUs' if self.use_gpus else 'CPUs'} for them (ray status shows what is in use)"
            ) from None
        if len(names) != 1:
            raise ValueError(f"the Ray cluster mixes devices ({', '.join(sorted(names))}): speedups from one bench "
                             "must come from one kind of device; use a cluster of one GPU type")
        return names.pop()

    def run(self, jobs: list[tuple[Task, str]], on_result: OnResult) -> list[JobFailure]:
        ray = self.ray
        dead_errors = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError)
        batches = deque(list(range(s, min(s + self.batch, len(jobs)))) for s in range(0, len(jobs), self.batch))
        attempts: dict[int, int] = {}
        idle = deque(self.actors)
        inflight: dict = {}
        failures: list[JobFailure] = []
        while batches or inflight:
            while batches and idle:
                actor = idle.popleft()
                indices = batches.popleft()
                payload = [(jobs[i][0].to_json(), jobs[i][1]) for i in indices]
                inflight[actor.evaluate_batch.remote(payload)] = (indices, actor)
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                indices, actor = inflight.pop(ref)
                try:
                    records = ray.get(ref)
                except dead_errors as e:
                    key = indices[0]
                    attempts[key] = attempts.get(key, 0) + 1
                    log.warning("judge actor died (%s); replacing it and re-queuing %d job(s)", type(e).__name__, len(indices))
                    self._replace(actor, idle)
                    if attempts[key] > self.max_retries:
                        failures += [JobFailure(i, f"judge actor died {attempts[key]} times: {e}") for i in indices]
                    else:
                        batches.appendleft(indices)
                    continue
                idle.append(actor)
                for i, rec in zip(indices, records):
                    on_result(i, Verdict.from_json(rec))
        return failures

    def _replace(self, actor, idle: deque) -> None:
        try:
            self.ray.kill(actor)
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.actors = [a for a in self.actors if a is not actor]
        fresh = self._new_actor()
        self.actors.append(fresh)
        idle.append(fresh)
        self.replaced += 1

    def shutdown(self) -> None:
        for a in self.actors:
            try:
                self.ray.kill(a)
            except Exception:  # noqa: BLE001
                pass
        self.actors = []
