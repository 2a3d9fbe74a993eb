"""Where does a small kernel's time go in the judge's timed region? (CUDA only)

Times one forward (``x.clone()`` of 16 KB and of 64 MB, in an ``nn.Module`` under ``no_grad``) in
one plain process, the way the worker's ``time_call`` does, with variations, and prints for each
the median time, the share of calls whose device-wide wait after the end event exceeded the
worker's side-stream threshold, and the host time from the flush's launch to the call's return:

  idle-start     synchronize, flush L2, start event, call, end event (the worker's region)
  spacer         synchronize, a sleep kernel of SPACER_US, flush, start, call, end: the host has
                 the sleep's length to launch the call, so launch latency stays outside
  busy-loop      no synchronize before the flush (do_bench's pattern: the previous call keeps the
                 device busy)

Then judges an exact copy of the 16 KB task with the real judge and prints its candidate time,
floor and late calls. One JSON line per measurement, then a table.

    python benchmarks/judge_timing_probe.py [--calls 100] [--spacer-us 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

LAG_MS = 0.02  # the worker's SIDE_STREAM_LAG_MS


class Copy(nn.Module):
    def forward(self, x):
        return x.clone()


def probe(n: int, mode: str, calls: int, spacer_us: float, flush_bytes: int) -> dict:
    model, flush = Copy(), torch.empty(flush_bytes, dtype=torch.uint8, device="cuda")
    cycles = int(spacer_us * torch.cuda.get_device_properties(0).clock_rate / 1e3)  # clock_rate in kHz
    times, lags, hosts, keep = [], [], [], None
    with torch.no_grad():
        for k in range(calls + 5):
            x = torch.randn(n, device="cuda")
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            if mode == "idle-gap":
                torch.cuda.synchronize()
                time.sleep(0.002)  # the device idles for 2 ms, as between the worker's calls
            if mode != "busy-loop":
                torch.cuda.synchronize()
            if mode == "spacer":
                torch.cuda._sleep(cycles)
            h0 = time.perf_counter()
            flush.zero_()
            start.record()
            out = model(x)
            h1 = time.perf_counter()
            end.record()
            end.synchronize()
            t = time.perf_counter()
            torch.cuda.synchronize()
            lag = (time.perf_counter() - t) * 1e3
            if k >= 5:
                times.append(start.elapsed_time(end))
                lags.append(lag)
                hosts.append((h1 - h0) * 1e3)
            keep = (x, out)
    del keep
    return {"n_bytes": n * 4, "mode": mode, "flush_mb": flush_bytes >> 20, "median_ms": statistics.median(times),
            "p10_ms": sorted(times)[len(times) // 10], "late_share": sum(lag > LAG_MS for lag in lags) / len(lags),
            "lag_median_ms": statistics.median(lags), "host_launch_ms": statistics.median(hosts)}


def judge_copy(n: int, sandbox: str = "auto") -> dict:
    from cudal1.judge import Judge, JudgeConfig
    from cudal1.tasks import load_task_file

    src = (f"import torch\nimport torch.nn as nn\n\nclass Model(nn.Module):\n    def forward(self, x):\n"
           f"        return x.clone()\n\ndef get_inputs():\n    return [torch.randn({n})]\n\n"
           f"def get_init_inputs():\n    return []\n")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "1_probe_copy.py"
        path.write_text(src)
        task = load_task_file(path)
        judge = Judge("cuda", JudgeConfig(sandbox=sandbox))
        try:
            v = judge.evaluate(task, src.replace("class Model", "class ModelNew"))
        finally:
            judge.close()
    return {"n_bytes": n * 4, "mode": f"judge {sandbox}", "median_ms": v.candidate_ms, "ref_ms": v.ref_ms, "floor_ms": v.floor_ms,
            "late_calls": v.details.late_calls, "verdict": v.verdict, "cv": v.candidate_cv,
            "stage_s": v.details.stage_s}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--spacer-us", type=float, default=100.0)
    p.add_argument("--no-judge", action="store_true")
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU here: this probe times the judge's CUDA region")
        return 0
    rows = []
    for n in (4096, 16 << 20):
        for mode in ("idle-start", "idle-gap", "spacer", "busy-loop"):
            for flush in (128 << 20,):
                rows.append(probe(n, mode, a.calls, a.spacer_us, flush))
                print(json.dumps(rows[-1]), flush=True)
    if not a.no_judge:
        for sandbox in ("off", "auto"):
            rows.append(judge_copy(4096, sandbox))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'bytes':>10} {'mode':11} {'flush':>5} {'median us':>9} {'p10 us':>7} {'late':>5} {'lag us':>6} {'launch us':>9}")
    for r in rows:
        print(f"{r['n_bytes']:>10} {r['mode']:11} {r.get('flush_mb', '-'):>5} {r['median_ms'] * 1e3:>9.1f} "
              f"{(r.get('p10_ms') or 0) * 1e3:>7.1f} {r.get('late_share', r.get('late_calls', '-'))!s:>5} "
              f"{(r.get('lag_median_ms') or 0) * 1e3:>6.1f} {(r.get('host_launch_ms') or 0) * 1e3:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
