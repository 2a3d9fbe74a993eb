"""Reference timings of the whole suite: eager and torch.compile, one row per task.

    python benchmarks/suite_times.py --markdown docs/suite_times.md --json suite_times.json
    python benchmarks/suite_times.py --device cpu --size smoke --no-compile     # a quick check on a CPU

Each reference runs in full fp32 (TF32 off), seed 0, under no_grad. Timing: warm-up calls,
then --iters calls timed with CUDA events and a device-wide synchronize, with a 256 MB buffer
zeroed between calls so that no call finds its inputs in L2. compile uses torch.compile's
default mode. A task that fails (load, eager, or compile) is recorded with its error and the
run goes on. Peak memory is torch.cuda.max_memory_allocated while the task ran, less what was
allocated before it (the flush buffer).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cudal1.judge.device import device_name, resolve_device
from cudal1.tasks import load_suite
from cudal1.tasks.runtime import forward_fn, instantiate, strict_fp32, time_callable

console = Console()
FLUSH_BYTES = 256 * 1024 * 1024


@dataclass
class Row:
    task: str
    inputs: str
    eager_ms: float | None = None
    compile_ms: float | None = None
    peak_mb: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return self.compile_ms / self.eager_ms if self.eager_ms and self.compile_ms else None


def _short_error(stage: str, e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".splitlines()[0]
    return f"{stage}: {text[:300]}"


def measure_task(task, device: str, iters: int, warmup: int, compile_too: bool, flush) -> Row:
    row = Row(task=task.id, inputs=", ".join(task.input_specs))
    cuda = device.startswith("cuda")
    baseline = 0
    if cuda:
        torch.cuda.synchronize()
        baseline = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    try:
        model, inputs = instantiate(task, device, seed=0)
    except Exception as e:  # noqa: BLE001 - one task's failure is a row, not the end of the run
        row.errors.append(_short_error("build", e))
        return row
    try:
        row.eager_ms = statistics.median(time_callable(forward_fn(model, inputs), device, iters, warmup, between=flush))
    except Exception as e:  # noqa: BLE001
        row.errors.append(_short_error("eager", e))
    if cuda:
        row.peak_mb = (torch.cuda.max_memory_allocated() - baseline) / 2**20
    if compile_too:
        try:
            compiled = torch.compile(model)
            row.compile_ms = statistics.median(
                time_callable(forward_fn(compiled, inputs), device, iters, max(warmup, 3), between=flush)
            )
        except Exception as e:  # noqa: BLE001
            row.errors.append(_short_error("compile", e))
        torch._dynamo.reset()
    del model, inputs
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return row


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def to_markdown(rows: list[Row], header: str) -> str:
    lines = [header, "", "| task | inputs | eager ms | compile ms | compile/eager | peak MB |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        peak = "-" if r.peak_mb is None else f"{r.peak_mb:.0f}"
        lines.append(f"| {r.task} | {r.inputs} | {_ms(r.eager_ms)} | {_ms(r.compile_ms)} | {ratio} | {peak} |")
    failed = [r for r in rows if r.errors]
    if failed:
        lines += ["", "Errors:", ""] + [f"- {r.task}: {'; '.join(r.errors)}" for r in failed]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="builtin", help="'builtin' or a KernelBench checkout")
    p.add_argument("--size", default="full", choices=["full", "smoke"])
    p.add_argument("--level", type=int, default=None, help="only this level")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--iters", type=int, default=20, help="timed calls per task (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile column")
    p.add_argument("--only", default=None, help="only task ids containing this text")
    p.add_argument("--markdown", default=None, help="write a markdown table here")
    p.add_argument("--json", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)

    device = resolve_device(args.device)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device).index or 0)
    loaded = load_suite(args.suite, size=args.size, level=args.level)
    tasks = [t for t in loaded.tasks if args.only is None or args.only in t.id]
    flush = None
    if device.startswith("cuda"):
        buffer = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=device)
        flush = buffer.zero_
    name = device_name(device)
    started = time.time()
    rows: list[Row] = [Row(task=str(e.path), inputs="", errors=[_short_error("load", e)]) for e in loaded.errors]
    with strict_fp32(), Progress(console=console, transient=True) as progress:
        bar = progress.add_task("suite", total=len(tasks))
        for task in tasks:
            progress.update(bar, description=task.id)
            try:
                rows.append(measure_task(task, device, args.iters, args.warmup, not args.no_compile, flush))
            except Exception as e:  # noqa: BLE001 - e.g. out of memory outside the guarded stages
                rows.append(Row(task=task.id, inputs=", ".join(task.input_specs), errors=[_short_error("run", e)]))
                if "--debug" in sys.argv:
                    traceback.print_exc()
            progress.advance(bar)

    table = Table(title=f"suite {args.suite} ({args.size}) on {name}, torch {torch.__version__}, fp32 (no TF32)")
    for col in ("task", "inputs", "eager ms", "compile ms", "compile/eager", "peak MB", "error"):
        table.add_column(col, justify="right" if ("ms" in col or col in ("compile/eager", "peak MB")) else "left")
    for r in rows:
        table.add_row(r.task, r.inputs, _ms(r.eager_ms), _ms(r.compile_ms), "-" if r.ratio is None else f"{r.ratio:.2f}",
                      "-" if r.peak_mb is None else f"{r.peak_mb:.0f}", "; ".join(r.errors)[:80])
    console.print(table)
    console.print(f"{len(rows)} rows, {sum(bool(r.errors) for r in rows)} with errors, {time.time() - started:.0f} s")

    header = (f"Measured on {name}, torch {torch.__version__}, {args.size} sizes, fp32 (TF32 off), median of "
              f"{args.iters} calls after {args.warmup} warm-up"
              f"{', L2 flushed between calls' if device.startswith('cuda') else ''}; compile = torch.compile default mode; "
              f"peak MB = torch.cuda.max_memory_allocated during the task (GPU only).")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(to_markdown(rows, header))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "size": args.size, "iters": args.iters,
                       "rows": [{**asdict(r), "compile_over_eager": r.ratio} for r in rows]}, f, indent=1)
    return 0 if rows and not all(r.errors for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
