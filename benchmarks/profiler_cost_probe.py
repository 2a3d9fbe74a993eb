"""What does the judge's kernel profile cost, and does a profiler session leave launches slower? (CUDA only)

In one fresh process, in the order the judge's candidate process meets them: CUDA start-up, then
profiler sessions (each a `torch.profiler.profile` over a few small calls, then `events()`), with
the host's launch cost measured before the first session and after each one (median host time
per launch of a tiny kernel over 2000 launches, and the event-timed length of a 16 KB copy). The
judge opens one session at a candidate process's start-up (`worker.warm_device`) so that the
profile after timing finds CUPTI loaded; this shows what that saves and that timing after a
session is unchanged. One JSON line per step.

    python benchmarks/profiler_cost_probe.py [--sessions 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def launch_cost_us(x: torch.Tensor, n: int = 2000) -> float:
    torch.cuda.synchronize()
    per = []
    for _ in range(n // 100):
        t0 = time.perf_counter()
        for _ in range(100):
            x.add_(0)
        per.append((time.perf_counter() - t0) / 100 * 1e6)
        torch.cuda.synchronize()
    return statistics.median(per)


def copy_us(x: torch.Tensor, n: int = 50) -> float:
    times = []
    for _ in range(n):
        torch.cuda.synchronize()
        torch.cuda._sleep(200_000)
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        x.clone()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3)
    return statistics.median(times)


def session_s(calls: int, x: torch.Tensor) -> tuple[float, float, int]:
    from torch.profiler import ProfilerActivity, profile

    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            (x * 2).relu_()
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    kernels = sum(1 for e in prof.events() if str(getattr(e, "device_type", "")).endswith("CUDA"))
    return t1 - t0, time.perf_counter() - t1, kernels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=3)
    a = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("profiler_cost_probe.py needs a CUDA device")
    t0 = time.perf_counter()
    x = torch.ones(4096, device="cuda")
    (torch.ones(64, 64, device="cuda") @ torch.ones(64, 64, device="cuda")).sum().item()
    print(json.dumps({"step": "cuda start-up", "s": round(time.perf_counter() - t0, 3)}), flush=True)

    def timing(step: str):
        print(json.dumps({"step": step, "launch_us": round(launch_cost_us(x), 2), "copy_16kb_us": round(copy_us(x), 2)}),
              flush=True)

    timing("timing before any profiler session")
    for i in range(a.sessions):
        run_s, events_s, kernels = session_s(3, x)
        print(json.dumps({"step": f"profiler session {i + 1}", "run_s": round(run_s, 3), "events_s": round(events_s, 3),
                          "cuda_events": kernels}), flush=True)
        timing(f"timing after session {i + 1}")


if __name__ == "__main__":
    main()
