"""Judge workers for training: every reward and every kept sample comes from `cudal1.judge`.

``local`` runs `evaluate_many` on this machine (builds overlap on a CPU pool, measurements run
one at a time on the device). ``ray`` spreads the jobs over Ray actors, one per GPU, each
calling `evaluate` on its own GPU; use it when generation and judging should not share GPUs
or when the judge fleet spans several machines.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..judge.config import JudgeConfig
from ..judge.verdict import Verdict
from ..tasks.contract import Task
from .config import JudgeOptions

log = logging.getLogger(__name__)

Job = tuple[Task, str]


@dataclass
class JudgeCounters:
    evaluations: int = 0
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.evaluations / self.seconds if self.seconds > 0 else 0.0


class JudgePool:
    """``evaluate(jobs) -> verdicts`` in input order; identical (task, source) jobs of one call are judged once."""

    def __init__(self, options: JudgeOptions, config: JudgeConfig | None = None):
        self.options = options
        self.config = config or options.judge_config()
        self.counters = JudgeCounters()
        self._ray_actors = None
        if options.backend == "ray":
            self._ray_actors = _start_ray_actors(options, self.config)

    @property
    def device(self) -> str:
        return self.options.device

    @functools.cached_property
    def device_name(self) -> str:
        """The name the judge records verdicts under (part of the store's resume key)."""
        from ..judge import Judge

        return Judge(self.options.device, self.config).device_name

    def evaluate(self, jobs: list[Job], on_result: Callable[[int, Verdict], None] | None = None) -> list[Verdict]:
        if not jobs:
            return []
        unique: dict[tuple[str, str, str], int] = {}
        order: list[Job] = []
        index_of = []
        for task, source in jobs:
            key = (task.id, task.size, source)
            if key not in unique:
                unique[key] = len(order)
                order.append((task, source))
            index_of.append(unique[key])
        start = time.perf_counter()
        if self._ray_actors is not None:
            verdicts = _evaluate_ray(self._ray_actors, order)
        else:
            from ..judge import evaluate_many

            verdicts = evaluate_many(order, device=self.options.device, config=self.config,
                                     build_workers=self.options.build_workers)
        self.counters.evaluations += len(order)
        self.counters.seconds += time.perf_counter() - start
        out = [verdicts[i] for i in index_of]
        if on_result is not None:
            for i, v in enumerate(out):
                on_result(i, v)
        return out


def _start_ray_actors(options: JudgeOptions, config: JudgeConfig):
    try:
        import ray
    except ImportError:
        raise RuntimeError("judge.backend=ray needs Ray: pip install 'cudal1[ray]' (or set judge.backend=local)") from None
    if not ray.is_initialized():
        ray.init(address=options.ray_address, ignore_reinit_error=True)
    n = options.ray_workers or int(ray.cluster_resources().get("GPU", 0)) or 1
    use_gpu = options.device != "cpu"

    @ray.remote(num_gpus=1 if use_gpu else 0)
    class JudgeActor:
        def __init__(self, config_json: dict, device: str):
            from cudal1.judge.config import JudgeConfig as JC

            self.config = JC.from_json(config_json)
            self.device = "cuda" if device.startswith("cuda") or device == "auto" else device

        def evaluate(self, task_json: dict, source: str) -> str:
            from cudal1.judge import evaluate
            from cudal1.tasks.contract import Task as T

            return evaluate(T.from_json(task_json), source, self.device, self.config).dumps()

    log.info("starting %d Ray judge actor(s)", n)
    return [JudgeActor.remote(config.to_json(), options.device) for _ in range(n)]


def _evaluate_ray(actors, jobs: list[Job]) -> list[Verdict]:
    import ray

    # Round-robin; each actor measures one candidate at a time on its own GPU.
    refs = [actors[i % len(actors)].evaluate.remote(task.to_json(), source) for i, (task, source) in enumerate(jobs)]
    return [Verdict.loads(s) for s in ray.get(refs)]
