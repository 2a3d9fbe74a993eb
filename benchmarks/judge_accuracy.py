"""Does the judge's clock agree with independent timers? A ladder of kernels from ~5 us to ~50 ms
(on an H200-class GPU), each timed three ways:

(a) the judge: ``Judge.evaluate(task, candidate)`` with a candidate identical to the reference
    (``ModelNew`` = the same forward); its ``candidate_ms`` (and ``ref_ms``) are the medians of its
    timed calls, each on fresh inputs with L2 flushed, and ``floor_ms`` its time for an empty forward;
(b) ``triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")`` on the same forward and
    input shapes (it flushes L2 itself; the median, as the judge reports medians);
(c) a plain CUDA-event loop: fresh inputs per call, a 256 MB buffer zeroed before each call (L2
    flush), events around the call only, median of 50 calls.

Goal: |judge - do_bench| <= 5% of do_bench from 20 us up; below 20 us, within the larger of 5%
and the judge's reported floor. (b) and (c) queue the call right behind the flush, so they hide
the launch latency that the judge, which starts each call on an idle device, includes: that
difference is what the floor clause allows for.

Rungs (named by their GPU sizes; the CPU ladder uses smaller ones, see ``--list``): copies
(``x.clone()``, 16 KB to 1 GB), elementwise (relu, add), reductions (sum over a
dim), GEMMs (fp32, 256 to 10240), constant outputs (a precomputed buffer's clone,
``torch.zeros_like``), and a CUDA-graph replay (a few ops captured once, replayed into a static
output that is cloned out). Each rung is a task source in the KernelBench format.

Results are appended to ``--out`` as JSON lines (one per rung, each with this run's start time)
as each rung finishes, so a killed run keeps what it measured.

    python benchmarks/judge_accuracy.py                              # every rung, cuda
    python benchmarks/judge_accuracy.py --rungs 'copy*,gemm_1024'    # comma-separated globs
    python benchmarks/judge_accuracy.py --quick --out acc.jsonl      # JudgeConfig.quick()
    python benchmarks/judge_accuracy.py --list                       # the rungs and their sizes
    python benchmarks/judge_accuracy.py --device cpu --quick --rungs 'copy*'
        # the CPU ladder (small sizes): no do_bench; (c) is a time.perf_counter loop and the
        # goal is checked against it. Checks the rungs and the script end to end, not the GPU clock.

Without a CUDA GPU (and without --device cpu) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()

GOAL_FROM_MS = 0.020  # from 20 us up the judge must agree with do_bench within GOAL_REL
GOAL_REL = 0.05
EVENT_CALLS = 50
EVENT_WARMUP = 3
FLUSH_BYTES = 256 << 20


# --- the rungs -------------------------------------------------------------------------------
CLONE = '''
class {cls}(nn.Module):
    def forward(self, x):
        return x.clone()
'''
RELU = '''
class {cls}(nn.Module):
    def forward(self, x):
        return torch.relu(x)
'''
ADD = '''
class {cls}(nn.Module):
    def forward(self, x, y):
        return x + y
'''
SUM = '''
class {cls}(nn.Module):
    def forward(self, x):
        return x.sum(dim=1)
'''
MATMUL = '''
class {cls}(nn.Module):
    def forward(self, a, b):
        return torch.matmul(a, b)
'''
CONST_CLONE = '''
class {cls}(nn.Module):
    """Returns a precomputed tensor's clone, whatever the input."""

    def __init__(self, n):
        super().__init__()
        self.register_buffer("table", torch.arange(n, dtype=torch.float32) / n)

    def forward(self, x):
        return self.table.clone()
'''
ZEROS_LIKE = '''
class {cls}(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)
'''
GRAPH_REPLAY = '''
class {cls}(nn.Module):
    """A few ops captured once in a CUDA graph; each call copies its input into the graph's static
    input, replays, and clones the static output. Off the GPU the same ops run eagerly."""

    def __init__(self):
        super().__init__()
        self.graph = None
        self.static_x = None
        self.static_out = None

    @staticmethod
    def ops(x):
        return torch.relu(x * 2.0 + 1.0).sum(dim=-1)

    def capture(self, x):
        self.static_x = x.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.ops(self.static_x)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = self.ops(self.static_x)

    def forward(self, x):
        if not x.is_cuda:
            return self.ops(x)
        if self.graph is None or self.static_x.shape != x.shape:
            self.capture(x)
        self.static_x.copy_(x)
        self.graph.replay()
        return self.static_out.clone()
'''

TASK_TEMPLATE = '''"""judge_accuracy rung {name}: {what}."""

import torch
import torch.nn as nn

{constants}
{model}

def get_inputs():
    return [{inputs}]


def get_init_inputs():
    return [{init}]
'''

CANDIDATE_TEMPLATE = '''"""judge_accuracy candidate for {name}: the reference's forward, unchanged."""

import torch
import torch.nn as nn
{model}'''


@dataclass(frozen=True)
class Rung:
    """One kernel of the ladder: a model, its inputs (expressions over the size constants), and
    the sizes on a GPU and on the CPU ladder."""

    name: str
    family: str
    what: str
    model: str
    inputs: str
    sizes: dict = field(default_factory=dict)
    cpu_sizes: dict = field(default_factory=dict)
    init: str = ""

    def task_source(self, cpu: bool) -> str:
        sizes = self.cpu_sizes if cpu else self.sizes
        constants = "\n".join(f"{k} = {v}" for k, v in sizes.items()) + "\n"
        return TASK_TEMPLATE.format(name=self.name, what=self.what, constants=constants,
                                    model=self.model.format(cls="Model"), inputs=self.inputs, init=self.init)

    def candidate_source(self) -> str:
        return CANDIDATE_TEMPLATE.format(name=self.name, model=self.model.format(cls="ModelNew"))


def _copy(name: str, n: int, cpu_n: int, what: str) -> Rung:
    return Rung(name, "copy", f"x.clone() of {what}", CLONE, "torch.randn(N)", {"N": n}, {"N": cpu_n})


def _gemm(n: int, cpu_n: int) -> Rung:
    return Rung(f"gemm_{n}", "gemm", f"fp32 matmul, {n}x{n} by {n}x{n}", MATMUL, "torch.randn(N, N), torch.randn(N, N)",
                {"N": n}, {"N": cpu_n})


RUNGS: tuple[Rung, ...] = (
    _copy("copy_16k", 4 << 10, 4 << 10, "16 KB"),
    _copy("copy_4m", 1 << 20, 64 << 10, "4 MB"),
    _copy("copy_64m", 16 << 20, 1 << 20, "64 MB"),
    _copy("copy_256m", 64 << 20, 4 << 20, "256 MB"),
    Rung("relu_64m", "elementwise", "torch.relu over 64 MB", RELU, "torch.randn(N)", {"N": 16 << 20}, {"N": 1 << 20}),
    Rung("add_256m", "elementwise", "x + y, 256 MB each", ADD, "torch.randn(N), torch.randn(N)",
         {"N": 64 << 20}, {"N": 1 << 20}),
    Rung("sum_4096", "reduction", "sum over dim 1 of 4096x4096", SUM, "torch.randn(R, C)",
         {"R": 4096, "C": 4096}, {"R": 512, "C": 512}),
    Rung("sum_16384", "reduction", "sum over dim 1 of 16384x16384 (1 GB)", SUM, "torch.randn(R, C)",
         {"R": 16384, "C": 16384}, {"R": 1024, "C": 1024}),
    _gemm(256, 64),
    _gemm(1024, 128),
    _gemm(4096, 256),
    _gemm(8192, 384),
    _gemm(10240, 512),
    Rung("const_clone", "constant", "a precomputed 4 MB buffer's clone, whatever the input", CONST_CLONE,
         "torch.randn(N)", {"N": 1 << 20}, {"N": 64 << 10}, init="N"),
    Rung("zeros_like", "constant", "torch.zeros_like of a 16 MB input", ZEROS_LIKE, "torch.randn(N)",
         {"N": 4 << 20}, {"N": 256 << 10}),
    Rung("graph_replay", "cuda-graph", "relu(2x+1).sum(-1) of 4096x1024 replayed from a CUDA graph", GRAPH_REPLAY,
         "torch.randn(R, C)", {"R": 4096, "C": 1024}, {"R": 256, "C": 256}),
)


def select_rungs(patterns: str | None) -> list[Rung]:
    if not patterns:
        return list(RUNGS)
    globs = [g.strip() for g in patterns.split(",") if g.strip()]
    return [r for r in RUNGS if any(fnmatch.fnmatch(r.name, g) or fnmatch.fnmatch(r.family, g) for g in globs)]


def build_tasks(rungs: list[Rung], folder: Path, cpu: bool) -> dict[str, object]:
    """Write each rung's task source to ``folder/level1/N_name.py`` and load it with the suite's
    loader (which checks the contract); returns {rung name: Task}."""
    from cudal1.tasks import load_task_file

    level = folder / "level1"
    level.mkdir(parents=True, exist_ok=True)
    tasks = {}
    for i, rung in enumerate(rungs, 1):
        path = level / f"{i}_{rung.name}.py"
        path.write_text(rung.task_source(cpu), encoding="utf-8")
        tasks[rung.name] = load_task_file(path, suite="judge_accuracy")
    return tasks


# --- the independent timers ------------------------------------------------------------------
def instantiate(task, device: str):
    """The task's Model on ``device`` and a function making fresh inputs there."""
    import torch

    from cudal1.tasks import exec_task_module

    module = exec_task_module(task.source, size=task.size)
    with torch.device(device):
        model = module.Model(*module.get_init_inputs()).eval()

    def make_inputs():
        with torch.device(device):
            return module.get_inputs()

    return model, make_inputs


def time_do_bench(model, make_inputs) -> float | None:
    """(b): triton's do_bench on one set of inputs (it flushes L2 itself); None without triton."""
    import torch

    try:
        from triton.testing import do_bench
    except ImportError:
        return None
    inputs = make_inputs()

    def call():
        with torch.no_grad():
            model(*inputs)

    try:
        return float(do_bench(call, warmup=25, rep=100, return_mode="median"))
    except TypeError:  # a triton without return_mode
        return float(do_bench(call, warmup=25, rep=100))


def time_event_loop(model, make_inputs, device: str, calls: int = EVENT_CALLS) -> float:
    """(c): median of ``calls``; each on fresh inputs after an L2 flush, events around the call
    only. On the CPU a time.perf_counter loop with fresh inputs."""
    import torch

    times = []
    with torch.no_grad():
        if not device.startswith("cuda"):
            for k in range(EVENT_WARMUP + calls):
                inputs = make_inputs()
                t0 = time.perf_counter()
                model(*inputs)
                if k >= EVENT_WARMUP:
                    times.append((time.perf_counter() - t0) * 1e3)
            return statistics.median(times)
        flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=device)
        for k in range(EVENT_WARMUP + calls):
            inputs = make_inputs()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            flush.zero_()
            start.record()
            model(*inputs)
            end.record()
            torch.cuda.synchronize(device)
            if k >= EVENT_WARMUP:
                times.append(start.elapsed_time(end))
            del inputs
        del flush
    return statistics.median(times)


# --- the goal --------------------------------------------------------------------------------
def tolerance_ms(reference_ms: float, floor_ms: float | None) -> float:
    """How far the judge may be from the reference timer: 5% from 20 us up; below, the larger of
    5% and the judge's floor."""
    rel = GOAL_REL * reference_ms
    if reference_ms >= GOAL_FROM_MS or floor_ms is None:
        return rel
    return max(rel, floor_ms)


# CUDA event times come as float32 milliseconds: a difference equal to the tolerance can exceed it
# in the last bits (zeros_like on an H200: 0.008128000423 - 0.006848 against a 0.00128 floor).
EVENT_EPS_MS = 1e-6


def agrees(judge_ms: float | None, reference_ms: float | None, floor_ms: float | None) -> bool | None:
    if judge_ms is None or reference_ms is None:
        return None
    return abs(judge_ms - reference_ms) <= tolerance_ms(reference_ms, floor_ms) + EVENT_EPS_MS


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# --- one rung --------------------------------------------------------------------------------
def measure(rung: Rung, task, judge, device: str) -> dict:
    import torch

    t0 = time.monotonic()
    verdict = judge.evaluate(task, rung.candidate_source())
    model, make_inputs = instantiate(task, device)
    cuda = device.startswith("cuda")
    do_bench_ms = time_do_bench(model, make_inputs) if cuda else None
    event_ms = time_event_loop(model, make_inputs, device)
    del model
    if cuda:
        torch.cuda.empty_cache()
    reference = do_bench_ms if do_bench_ms is not None else event_ms
    judge_ms = verdict.candidate_ms
    return {
        "rung": rung.name, "family": rung.family, "what": rung.what, "task": task.id,
        "sizes": rung.sizes if cuda else rung.cpu_sizes, "device": device, "device_name": judge.device_name,
        "torch": judge.torch_version,
        "do_bench_ms": do_bench_ms, "event_ms": event_ms,
        "timer": "do_bench" if do_bench_ms is not None else ("cuda-events" if cuda else "perf_counter"),
        "judge_candidate_ms": judge_ms, "judge_ref_ms": verdict.ref_ms, "floor_ms": verdict.floor_ms,
        "speedup": verdict.speedup, "speedup_ci": list(verdict.speedup_ci) if verdict.speedup_ci else None,
        "ref_cv": verdict.ref_cv, "candidate_cv": verdict.candidate_cv,
        "verdict": verdict.verdict, "findings": verdict.finding_ids(),
        "ratio_do_bench": _ratio(judge_ms, do_bench_ms), "ratio_event": _ratio(judge_ms, event_ms),
        "tolerance_ms": tolerance_ms(reference, verdict.floor_ms) if reference is not None else None,
        "pass": agrees(judge_ms, reference, verdict.floor_ms),
        "wall_s": round(time.monotonic() - t0, 2),
    }


# --- output ----------------------------------------------------------------------------------
def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _sizes(sizes: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sizes.items())


def _r(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def results_table(rows: list[dict], title: str) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold", caption_justify="left",
              caption="ms, medians. events: the CUDA-event loop (perf_counter on the CPU); judge: its candidate_ms; "
                      "j/db, j/ev: judge / do_bench, judge / events; floor: the judge's floor_ms. "
                      f"goal: |judge - do_bench| <= {GOAL_REL:.0%} from {GOAL_FROM_MS * 1e3:.0f} us up, else <= "
                      f"max({GOAL_REL:.0%}, floor); on the CPU against the perf_counter loop")
    t.add_column("rung")
    for col in ("do_bench", "events", "judge", "j/db", "j/ev", "floor", "goal"):
        t.add_column(col, justify="right")
    for r in rows:
        goal = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: f"[yellow]{r['verdict']}[/]"}[r["pass"]]
        t.add_row(r["rung"], _ms(r["do_bench_ms"]), _ms(r["event_ms"]), _ms(r["judge_candidate_ms"]),
                  _r(r["ratio_do_bench"]), _r(r["ratio_event"]), _ms(r["floor_ms"]), goal)
    return t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (the CPU ladder); default cuda")
    p.add_argument("--rungs", default=None, metavar="GLOBS",
                   help="comma-separated globs over rung names or families (e.g. 'copy*,gemm_1024'); default all")
    p.add_argument("--out", default="judge_accuracy.jsonl", help="JSON lines appended per rung (default judge_accuracy.jsonl)")
    p.add_argument("--quick", action="store_true", help="JudgeConfig.quick(): fewer trials and timed calls")
    p.add_argument("--list", action="store_true", help="list the rungs and exit")
    a = p.parse_args(argv)

    rungs = select_rungs(a.rungs)
    if a.list:
        t = Table(title="rungs", title_justify="left", header_style="bold")
        for col in ("rung", "family", "what", "cuda sizes", "cpu sizes"):
            t.add_column(col)
        for r in rungs:
            t.add_row(r.name, r.family, r.what, _sizes(r.sizes), _sizes(r.cpu_sizes))
        console.print(t)
        return 0
    if not rungs:
        console.print(f"[red]no rung matches {a.rungs!r}[/red]: choose from {', '.join(r.name for r in RUNGS)}")
        return 2

    import torch

    cpu = a.device == "cpu"
    if not cpu and not torch.cuda.is_available():
        console.print(f"[yellow]no CUDA GPU visible here (torch {torch.__version__}): judge_accuracy measures the "
                      "judge's GPU clock and has nothing to do.[/yellow] Run it on a GPU machine, or with "
                      "--device cpu for the CPU ladder.")
        return 0

    from cudal1.judge import Judge, JudgeConfig

    config = JudgeConfig.quick() if a.quick else JudgeConfig()
    try:
        judge = Judge(a.device, config)
    except ValueError as e:
        console.print(f"[red]{e}[/red]")
        return 2
    run_id = _dt.datetime.now().isoformat(timespec="seconds")
    out = Path(a.out)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="cudal1-judge-accuracy-") as folder:
        tasks = build_tasks(rungs, Path(folder), cpu)  # every source checked before any timing
        console.print(f"{len(rungs)} rung(s) on {judge.device_name} ({judge.device}), torch {judge.torch_version}; "
                      f"results appended to {out}")
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=True)
        try:
            with progress, out.open("a", encoding="utf-8") as f:
                bar = progress.add_task("rungs", total=len(rungs))
                for rung in rungs:
                    progress.update(bar, description=rung.name)
                    row = {"run": run_id, "quick": a.quick, **measure(rung, tasks[rung.name], judge, judge.device)}
                    f.write(json.dumps(row) + "\n")
                    f.flush()
                    rows.append(row)
                    progress.advance(bar)
        finally:
            judge.close()
    console.print(results_table(rows, f"judge accuracy on {judge.device_name}"))
    judged = [r for r in rows if r["pass"] is not None]
    failed = [r["rung"] for r in judged if not r["pass"]]
    console.print(f"{len(judged) - len(failed)} of {len(judged)} rung(s) within the goal"
                  + (f"; outside: {', '.join(failed)}" if failed else ""))
    for r in rows:
        if r["verdict"] != "accepted":
            console.print(f"[yellow]{r['rung']}[/yellow]: the judge said {r['verdict']} ({', '.join(r['findings']) or 'no findings'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
