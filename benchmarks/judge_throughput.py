"""Throughput: candidate evaluations per GPU-hour, builds overlapped on CPU workers (target >= 300
on an H100/H200), and the time each stage of an evaluation takes.

Candidates are the references themselves (ModelNew = Model); with ``--extension-every N`` every
Nth one is instead a CUDA-extension candidate (load_inline): the reference's forward followed by
a custom copy kernel on its first output, so the mix includes compiled candidates. That
extension's source is the same for every task, but each candidate source is built in its own
folder, so each such job pays a compile on the first pass.

    python benchmarks/judge_throughput.py [--suite PATH] [--level N] [--limit N] [--build-workers 4]
                                          [--extension-every 3] [--no-prestart] [--passes 2]

Every evaluation times its reference live, interleaved with the candidate (the judge keeps no
expected outputs or reference timings between evaluations); later passes reuse the builds.
``--no-prestart`` starts each candidate's process
only when its evaluation begins (for comparison with the default, which starts it ahead).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cudal1.judge import Judge, JudgeConfig
from cudal1.tasks import load_suite

from judge_overhead import reference_as_candidate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="auto")
    p.add_argument("--size", default="full")
    p.add_argument("--suite", default="builtin", help="'builtin' or a KernelBench checkout (levelN/ folders)")
    p.add_argument("--extension-every", type=int, default=0, metavar="N",
                   help="every Nth candidate is a CUDA-extension one (CUDA only; 0 = none)")
    p.add_argument("--level", type=int)
    p.add_argument("--limit", type=int)
    p.add_argument("--build-workers", type=int, default=4)
    p.add_argument("--no-prestart", action="store_true", help="start each candidate process only when its turn comes")
    p.add_argument("--passes", type=int, default=1, help="passes over the jobs; later ones reuse the builds")
    p.add_argument("--json")
    a = p.parse_args()
    tasks = load_suite(a.suite, size=a.size, level=a.level).tasks[: a.limit]
    judge = Judge(a.device, JudgeConfig(remeasure_threshold_l1=1e9, remeasure_threshold=1e9, prestart_processes="off" if a.no_prestart else "on"))
    every = a.extension_every if judge.device.startswith("cuda") else 0
    jobs = [(t, extension_candidate(t) if every and i % every == every - 1 else reference_as_candidate(t))
            for i, t in enumerate(tasks)]
    table = Table(title=f"judge throughput ({judge.device_name}, torch {judge.torch_version}, "
                        f"processes {'started when needed' if a.no_prestart else 'started ahead'})")
    for col in ("pass", "reference", "evaluations", "wall s", "s / evaluation", "evaluations / GPU-hour", "verdicts"):
        table.add_column(col)
    passes = []
    for n in range(max(1, a.passes)):
        t0 = time.monotonic()
        with Progress(transient=True) as progress:
            bar = progress.add_task(f"pass {n + 1}", total=len(jobs))
            done: dict[str, dict] = {}

            def on_result(i, v, t0=t0, done=done):
                progress.advance(bar)
                report_one(progress, tasks[i], v)
                done[tasks[i].id] = v.to_record()
                wall = time.monotonic() - t0  # a pass cut off still says what it judged, and how fast
                write_json(a.json, not a.no_prestart, passes + [{"wall_s": wall, "per_hour": len(done) / wall * 3600,
                                                                 "verdicts": done, "partial": True}])

            verdicts = judge.evaluate_many(jobs, build_workers=a.build_workers, on_result=on_result)
        wall = time.monotonic() - t0
        per_hour = len(jobs) / wall * 3600
        counts = Counter(v.verdict for v in verdicts)
        table.add_row(str(n + 1), "live", str(len(jobs)), f"{wall:.1f}", f"{wall / len(jobs):.2f}", f"{per_hour:.0f}",
                      ", ".join(f"{k}={v}" for k, v in counts.items()))
        passes.append({"wall_s": wall, "per_hour": per_hour, "verdicts": {t.id: v.to_record() for t, v in zip(tasks, verdicts)}})
        write_json(a.json, not a.no_prestart, passes)  # after every pass: a run cut off keeps what it measured
        bad = [(t.id, v.verdict, v.finding_ids()[:3], (v.details.error or "")[:200]) for t, v in zip(tasks, verdicts) if v.verdict != "accepted"]
        for row in bad:
            Console().print(row)
    Console().print(table)
    stage_table(passes[-1]["verdicts"].values())


def write_json(path: str | None, prestart: bool, passes: list[dict]) -> None:
    if path:
        with open(path, "w") as f:
            json.dump({"prestart": prestart, "passes": passes}, f, indent=1)


def report_one(progress, task, v) -> None:
    """One line per evaluation as it finishes (a run cut off still shows where the time went)."""
    stages = " ".join(f"{k} {s:.1f}" for k, s in sorted((v.details.stage_s or {}).items(), key=lambda kv: -kv[1])[:5])
    progress.console.print(f"{task.id}: {v.verdict} {v.speedup_text()} eval {v.eval_s or 0:.1f} s, build {v.build_s or 0:.1f} s"
                           f" | {stages}", markup=False, highlight=False)


EXTENSION = r'''
import torch
from torch.utils.cpp_extension import load_inline

_CUDA = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
__global__ void copy_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i];
}
torch::Tensor copy_out(torch::Tensor x) {
    auto y = torch::empty_like(x);
    int64_t n = x.numel();
    copy_kernel<<<(n + 255) / 256, 256, 0, at::cuda::getCurrentCUDAStream()>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
_ext = load_inline(name="throughput_copy_ext", cpp_sources="torch::Tensor copy_out(torch::Tensor x);",
                   cuda_sources=_CUDA, functions=["copy_out"], extra_cuda_cflags=["-O3"])


class ModelNew(Model):
    def forward(self, *args):
        out = super().forward(*args)
        if isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.is_cuda:
            return _ext.copy_out(out.contiguous())
        return out
'''


def extension_candidate(task) -> str:
    """The reference with a custom CUDA copy kernel applied to its output (a compiled candidate)."""
    return task.source + "\n" + EXTENSION


def stage_table(verdicts) -> None:
    """Mean seconds per stage of an evaluation (from each verdict's details.stage_s)."""
    totals: dict[str, list[float]] = {}
    for v in verdicts:
        for name, secs in (v.get("details", {}).get("stage_s") or {}).items():
            totals.setdefault(name, []).append(secs)
        if v.get("build_s"):
            totals.setdefault("build (ahead)", []).append(v["build_s"])
    table = Table(title="seconds per evaluation, by stage (last pass; mean over evaluations)")
    for col in ("stage", "mean s", "max s", "evaluations"):
        table.add_column(col)
    for name, xs in sorted(totals.items(), key=lambda kv: -sum(kv[1])):
        table.add_row(name, f"{sum(xs) / len(xs):.2f}", f"{max(xs):.2f}", str(len(xs)))
    Console().print(table)


if __name__ == "__main__":
    main()
