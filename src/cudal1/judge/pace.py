"""The machine's pace: how long a fixed workload takes on the judge's device right now.

Recorded with every verdict (``details.pace_ms``) beside the fastest pace this machine has shown
(``details.pace_best_ms``, kept in the judge's cache folder). A CPU pace well above the best
means the machine is busy: the judge then takes extra rounds and warns that the figure is
unreliable. (The reference itself is timed live in every evaluation, interleaved with the
candidate.) The workload mixes a compute-bound matmul and a memory-bound elementwise pass, like
the tasks.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..tasks.runtime import time_callable
from .reference import read_cache_table, write_cache_table

_CPU = {"n": 256, "elems": 1 << 22}
_CUDA = {"n": 2048, "elems": 1 << 25}


def measure_pace(device: str, threads: int, repeats: int = 9) -> float:
    """Fastest of ``repeats`` runs of the fixed workload, in milliseconds on ``device`` (about 2-10 ms per repeat)."""
    cuda = device.startswith("cuda")
    size = _CUDA if cuda else _CPU
    g = torch.Generator(device="cpu").manual_seed(1234)
    a = torch.randn(size["n"], size["n"], generator=g).to(device)
    b = torch.randn(size["n"], size["n"], generator=g).to(device)
    v = torch.randn(size["elems"], generator=g).to(device)
    before = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(max(1, threads))

    def work():
        for _ in range(4):
            torch.mm(a, b)
        torch.add(v, 1.0).mul_(0.5)

    try:
        with torch.no_grad():
            times = time_callable(work, device, iters=repeats, warmup=1)
    finally:
        if not cuda:
            torch.set_num_threads(before)
        del a, b, v
        if cuda:
            torch.cuda.empty_cache()
    return min(times)  # steady under passing noise; sustained load (every repeat slower) still shows


# A pace this much slower than the machine's best means other work is competing for it.
LOADED_FACTOR = 1.3


def best_pace(path: Path, key: str, now_ms: float) -> float:
    """The fastest pace recorded under ``key`` in ``path`` (a small JSON file), updated with
    ``now_ms``. A file that cannot be read or written costs only the comparison."""
    table = read_cache_table(path)
    best = min(float(table.get(key, now_ms)), now_ms)
    if best != table.get(key):
        table[key] = best
        write_cache_table(path, table)
    return best


def pace_loaded(now_ms: float | None, best_ms: float | None) -> bool:
    """Whether the machine is running well below its best pace right now."""
    return bool(now_ms and best_ms and now_ms > LOADED_FACTOR * best_ms)
