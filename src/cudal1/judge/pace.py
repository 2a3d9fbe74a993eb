"""The machine's pace: how long a fixed workload takes on the judge's device right now.

Recorded with every verdict (``details.pace_ms``), so that verdicts taken while the machine was
loaded or clocked differently can be told apart. (The reference itself is timed live in every
evaluation, interleaved with the candidate.) The workload mixes a compute-bound matmul and a
memory-bound elementwise pass, like the tasks.
"""

from __future__ import annotations

import torch

from ..tasks.runtime import time_callable

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


def pace_agrees(cached_ms: float | None, now_ms: float, tolerance: float) -> bool:
    """Whether the pace now is within ``tolerance`` (relative) of the cached one; an entry
    without a recorded pace never agrees."""
    if not cached_ms or cached_ms <= 0:
        return False
    return abs(now_ms / cached_ms - 1.0) <= tolerance
