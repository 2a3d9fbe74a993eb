"""Running judge jobs on this machine: one judge worker per device, builds on a CPU pool.

A bench hands a list of ``(task, source)`` jobs to a backend; the backend calls
``on_result(index, verdict)`` as each verdict arrives (from any thread) and returns the
indices it could not judge with the reason (a worker that kept dying). Timing on one device
is never overlapped: each device runs one `evaluate_many` batch at a time, whose builds
overlap on ``build_workers`` CPU processes while one candidate at a time is timed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..judge.verdict import Verdict
from ..tasks.contract import Task

log = logging.getLogger(__name__)

OnResult = Callable[[int, Verdict], None]


@dataclass(frozen=True)
class JobFailure:
    index: int
    reason: str


class LocalBackend:
    """Devices of this machine (``["cpu"]``, ``["cuda:0", "cuda:1"]``): one thread per device
    pulls batches of jobs from a shared queue and judges them with `evaluate_many`, so a fast
    device takes more work and no device idles while another has a backlog."""

    def __init__(self, devices: list[str], config, build_workers: int = 2, batch: int | None = None):
        if not devices:
            raise ValueError("LocalBackend needs at least one device")
        self.devices = list(devices)
        self.config = config
        self.build_workers = max(1, build_workers)
        self.batch = batch or max(2, 2 * self.build_workers)

    def device_name(self) -> str:
        """The name the judge records in verdicts (the resume key uses it too)."""
        from ..judge import Judge

        names = {Judge(d, self.config).device_name for d in self.devices}
        if len(names) > 1:
            raise ValueError(f"the devices differ ({', '.join(sorted(names))}): bench one kind of GPU at a time "
                             "(CUDA_VISIBLE_DEVICES selects them)")
        return names.pop()

    def run(self, jobs: list[tuple[Task, str]], on_result: OnResult) -> list[JobFailure]:
        from ..judge import evaluate_many

        if not jobs:
            return []
        if len(self.devices) == 1:
            evaluate_many(jobs, device=self.devices[0], config=self.config, build_workers=self.build_workers,
                          on_result=on_result)
            return []
        work: queue.Queue[list[int]] = queue.Queue()
        for start in range(0, len(jobs), self.batch):
            work.put(list(range(start, min(start + self.batch, len(jobs)))))
        failures: list[JobFailure] = []
        errors: list[BaseException] = []

        def device_loop(device: str) -> None:
            while not errors:
                try:
                    indices = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    evaluate_many([jobs[i] for i in indices], device=device, config=self.config,
                                  build_workers=self.build_workers,
                                  on_result=lambda k, v, indices=indices: on_result(indices[k], v))
                except BaseException as e:  # noqa: BLE001 - surfaced to the caller below
                    log.exception("judge worker for %s failed", device)
                    errors.append(e)
                    return

        threads = [threading.Thread(target=device_loop, args=(d,), name=f"judge-{i}-{d}", daemon=True)
                   for i, d in enumerate(self.devices)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return failures


def local_devices(device: str, gpus: int) -> list[str]:
    """The devices a local bench uses: ``gpus`` GPUs as ``cuda:0..N-1``, else the one device."""
    if gpus and gpus > 1:
        if not device.startswith("cuda"):
            raise ValueError(f"--gpus {gpus} needs CUDA GPUs, but the device is {device!r}")
        return [f"cuda:{i}" for i in range(gpus)]
    return [device]
