"""Does a GPU kernel run slower after the device sat idle? (the judge idles between timed calls
while it copies outputs out; a user's loop runs kernels back to back).

    python benchmarks/clock_ramp_probe.py [--n 4096] [--idle-ms 100]

Times one fp32 GEMM with CUDA events: back to back, after an idle gap, and after an idle gap
followed by an untimed busy burst of 0.5-4 ms (queued right before the timed call), and prints
the median of each with the SM clock NVML reports (when nvidia-ml-py is installed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--idle-ms", type=float, default=100.0)
    ap.add_argument("--calls", type=int, default=15)
    a = ap.parse_args()
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        clock = lambda: pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)  # noqa: E731
    except Exception:  # noqa: BLE001
        clock = lambda: None  # noqa: E731
    x = torch.randn(a.n, a.n, device="cuda")
    y = torch.randn(a.n, a.n, device="cuda")
    burst_x = torch.randn(2048, 2048, device="cuda")
    one_burst = _time(lambda: burst_x @ burst_x)  # one burst GEMM's length
    for _ in range(20):
        x @ y
    torch.cuda.synchronize()

    def timed(before=None) -> float:
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if before:
            before()
        s.record()
        x @ y
        e.record()
        torch.cuda.synchronize()
        return s.elapsed_time(e)

    rows = {}
    rows["back to back"] = ([timed() for _ in range(a.calls)], clock())
    idle = []
    for _ in range(a.calls):
        time.sleep(a.idle_ms / 1e3)
        c = clock()
        idle.append(timed())
    rows[f"after {a.idle_ms:.0f} ms idle"] = (idle, c)
    for burst_ms in (0.5, 1.0, 2.0, 4.0):
        k = max(1, round(burst_ms / one_burst))
        ts = []
        for _ in range(a.calls):
            time.sleep(a.idle_ms / 1e3)
            ts.append(timed(lambda: [burst_x @ burst_x for _ in range(k)]))
        rows[f"idle, then a {k * one_burst:.1f} ms burst"] = (ts, clock())
    base = statistics.median(rows["back to back"][0])
    for name, (ts, c) in rows.items():
        m = statistics.median(ts)
        print(json.dumps({"case": name, "median_ms": round(m, 4), "min_ms": round(min(ts), 4),
                          "vs_back_to_back": round(m / base, 4), "sm_clock_mhz": c}))


def _time(fn) -> float:
    for _ in range(3):
        fn()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(10):
        fn()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / 10


if __name__ == "__main__":
    main()
