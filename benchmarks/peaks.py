"""Measure and print this machine's peaks: matmul FLOP/s per precision and copy bandwidth.

    python benchmarks/peaks.py [--device cuda:0] [--quick] [--no-cache]

GPU: best of 20 timed 8192^3 matmuls in bf16, fp16, fp32 with TF32 (matrix units) and fp32 with
TF32 off (CUDA cores), and a 1 GiB device-to-device copy (read + write bytes). The result is
cached in ~/.cache/cudal1/peaks.json for `cudal1 roofline`, `cudal1 explain` and reports.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table


def main(argv: list[str] | None = None) -> int:
    from cudal1.analysis.roofline import measure_peaks, save_peaks
    from cudal1.judge.device import resolve_device

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="smaller problems (a first look, not a peak)")
    p.add_argument("--no-cache", action="store_true", help="do not write the peaks cache")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    peaks = measure_peaks(device, quick=args.quick)
    t = Table(title=f"Measured peaks: {peaks.device_name} (torch {peaks.torch})")
    t.add_column("what")
    t.add_column("peak", justify="right")
    t.add_column("measured with")
    for prec, v in peaks.flops.items():
        t.add_row(f"{prec} matmul", f"{v / 1e12:.1f} TFLOP/s", peaks.method.get(prec, ""))
    t.add_row("memory bandwidth", f"{peaks.bandwidth / 1e9:.0f} GB/s", peaks.method.get("bandwidth", ""))
    ridge = {k: v / peaks.bandwidth for k, v in peaks.flops.items()}
    t.add_row("ridge points", ", ".join(f"{k} {v:.0f}" for k, v in ridge.items()), "FLOP/byte where compute becomes the limit")
    console = Console()
    console.print(t)
    if not args.no_cache:
        console.print(f"cached in {save_peaks(peaks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
