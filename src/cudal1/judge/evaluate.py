"""The judge: build -> load -> check -> time -> audit, each candidate in its own worker process.

``evaluate`` is the one entry point; `Judge` keeps settings (device, config, sandbox level) for
many evaluations, and `evaluate_many` overlaps builds on a CPU pool with timing on the device.
The stages live in `build` (stage 1) and `session` (stages 2-5); this module turns what they
found into a `Verdict`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import torch

from ..tasks.contract import Task
from . import refpool, sandbox
from .catalogue import finding
from .build import NEEDS_BUILD_RE, BuildResult, build_candidate, build_key, concise_build_error
from .config import JudgeConfig
from .device import device_name, free_cores, resolve_device
from .pace import best_pace, measure_pace
from .process import WorkerProcess, WorkerSpec
from .protocol import ERROR_VERDICTS, Setup
from .reference import OutputSizes, cache_root
from .stats import contains_one
from .session import INCORRECT_IDS, Evidence, Measurement, Stop, Timing
from .verdict import KernelShare, Verdict, VerdictDetails

log = logging.getLogger(__name__)

KERNEL_DECL_RE = re.compile(r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+(\w+)")
TRITON_DECL_RE = re.compile(r"@triton\.jit[^\n]*\n(?:\s*@[^\n]*\n)*\s*def\s+(\w+)")


def declared_kernels(source: str) -> set[str]:
    """The CUDA (``__global__``) and Triton (``@triton.jit``) kernels a source defines."""
    return set(KERNEL_DECL_RE.findall(source)) | set(TRITON_DECL_RE.findall(source))


@dataclass
class _Slot:
    """A started candidate process and its own working folder."""

    key: tuple[str, str]  # _slot_key(source, device)
    work: str
    proc: WorkerProcess
    prestarted: bool = False

    def close(self):
        self.proc.close()
        shutil.rmtree(self.work, ignore_errors=True)


def _slot_key(source: str, device: str) -> tuple[str, str]:
    return hashlib.sha256(source.encode()).hexdigest(), device


class Judge:
    """Evaluates candidates on one device with one configuration."""

    def __init__(self, device: str = "auto", config: JudgeConfig | None = None):
        self.config = config or JudgeConfig()
        self.device = resolve_device(device)
        self.sandbox_level = sandbox.resolve_level(self.config.sandbox)
        # On the CPU both processes get the cores that are free when the judge starts (all of
        # them on an idle machine); `threads` in the config fixes the number instead.
        cpu = not self.device.startswith("cuda")
        self.threads = self.config.threads or (free_cores() if cpu else (os.cpu_count() or 1))
        # The name keys stored verdicts: it names the threads asked for, not those free right now
        # (details.threads has what a verdict used), so resuming does not depend on the load.
        asked = self.config.threads or (os.cpu_count() or 1)
        self.device_name = device_name(self.device) if not cpu else device_name("cpu").split(" (")[0] + f" ({asked} threads)"
        self.torch_version = torch.__version__
        # evaluate_many: the job after the current one, and its process once started early.
        self._upcoming: tuple[Task, str] | None = None
        self._spare_ref: WorkerProcess | None = None  # the next task's reference process, started ahead
        self._spare: _Slot | None = None
        self._spare_ref_waiting: WorkerProcess | None = None  # that reference once its imports finished
        # The reference's output bytes per reference_key, from its trials (kept in the cache): a
        # later evaluation of the same task, in this judge or a later one, sizes the candidate's
        # allocator poison from it without waiting for the reference, so both sides run their
        # trials at once.
        self.output_bytes = OutputSizes(cache_root(self.config) / "output_bytes.json")

    # --- candidate processes -------------------------------------------------------------------
    def _start_slot(self, source: str, device: str, ahead: bool = False) -> _Slot:
        """``ahead``: a spare for the next job, which warms its device only after the running
        evaluation's timing (`warm_spares`)."""
        work = tempfile.mkdtemp(prefix="cudal1-eval-")
        proc = WorkerProcess(self._spec("candidate", work, self.build_dir(source), device, measures=True,
                                        profiles=self.profiles(source), defer_warm=ahead))
        slot = _Slot(_slot_key(source, device), work, proc)
        try:
            proc.start()
        except BaseException:
            slot.close()
            raise
        return slot

    def _candidate_slot(self, source: str, device: str) -> _Slot:
        """This source's process: the spare one if it was started for it, otherwise a new one."""
        spare = self._spare
        if spare is not None and spare.key == _slot_key(source, device):
            self._spare = None
            spare.prestarted = True
            return spare
        return self._start_slot(source, device)

    def prestart_upcoming(self):
        """Start the next job's process (spawn, sandbox, torch import) while this one is judged.
        A spare for a job that never came (its build failed) is replaced."""
        if self._upcoming is None or not self._prestarting():
            self.close()
            return
        try:  # the next task's reference too, when its process is not already waiting
            self._spare_ref = refpool.prestart(self.reference_key(self._upcoming[0]), cache_root(self.config) / "live",
                                               lambda folder: self.reference_spec(folder, self.device, ahead=True))
        except OSError as e:
            log.warning("could not start the next reference process ahead: %s", e)
        if self._spare is not None and self._spare.key == _slot_key(self._upcoming[1], self.device):
            return
        self.close()
        try:
            self._spare = self._start_slot(self._upcoming[1], self.device, ahead=True)
        except OSError as e:  # the next job then starts its own process, as without a batch
            log.warning("could not start the next candidate's process ahead: %s", e)

    def reference_key(self, task: Task) -> tuple:
        """Which warm reference processes can serve ``task`` (`refpool`): one per task, size,
        device and thread count."""
        return (task.source_hash, task.size, self.device, self.threads)

    def _prestarting(self) -> bool:
        mode = self.config.prestart_processes
        return mode == "on" or (mode == "auto" and (os.cpu_count() or 1) >= 4)

    def close(self):
        """Stop a process started ahead for a job that will not run."""
        if self._spare is not None:
            self._spare.close()
            self._spare = None

    # --- stage: build ----------------------------------------------------------------------------
    def build_dir(self, source: str) -> str:
        d = cache_root(self.config) / "builds" / build_key(source, self.device_name)
        d.mkdir(parents=True, exist_ok=True)
        return str(d)

    def profiles(self, source: str) -> bool:
        """Whether a candidate's kernels are listed (a profiler pass): on CUDA, for a source that
        declares kernels of its own, or for every source with ``profile_every_candidate``."""
        c = self.config
        return (self.device.startswith("cuda") and c.profile_kernels
                and (c.profile_every_candidate or bool(declared_kernels(source))))

    def _spec(self, role: str, work_dir: str, build_dir: str, device: str | None = None, measures: bool = False,
              profiles: bool = False, defer_warm: bool = False) -> WorkerSpec:
        """``measures``: the process will be measured on the device (not a build), so it pays the
        device's start-up while it starts (`worker.warm_device`); ``profiles``: its kernels will
        be listed, so it also loads the profiler then; ``defer_warm``: that start-up waits for
        `WorkerProcess.warm_ahead` (a process started beside another evaluation's timing)."""
        c = self.config
        return WorkerSpec(role=role, device=device or self.device, work_dir=work_dir, build_dir=build_dir,
                          sandbox_level=self.sandbox_level, threads=self.threads, cpu_time_limit_s=c.cpu_time_limit_s,
                          file_size_limit_mb=c.file_size_limit_mb, max_processes=c.max_processes, memory_limit_gb=c.memory_limit_gb,
                          hidden=(str(cache_root(c)),), warm_device=measures,
                          warm_profiler=measures and profiles, defer_warm=measures and defer_warm)

    def reference_spec(self, folder: str, device: str, ahead: bool = False) -> WorkerSpec:
        """The trusted reference's process: its own process group, not sandboxed, writing into a
        private folder inside the judge's cache (hidden from candidates); kept warm between
        evaluations of the same task (`refpool`). ``ahead``: started for the next job (see
        `_start_slot`)."""
        return self._spec("reference", folder, folder, device, measures=True, defer_warm=ahead)

    def setup_request(self, task: Task, source: str, init_seed: int, build_only: bool, device: str | None = None) -> Setup:
        return Setup(device=device or self.device, threads=self.threads, task_source=task.source, size=task.size,
                     candidate_source=source, init_seed=init_seed, build_only=build_only,
                     gpu_memory_fraction=self.config.gpu_memory_fraction)

    def build(self, task: Task, source: str) -> BuildResult:
        """Import the candidate once in a sandboxed process (compiling its extensions into the
        build folder keyed by source and toolchain); later imports reuse the compiled code."""
        return build_candidate(task, source, self.build_dir(source),
                               lambda work, build: WorkerProcess(self._spec("candidate", work, build)),
                               self.setup_request(task, source, 0, True), self.config.build_timeout_s)

    # --- the whole evaluation --------------------------------------------------------------------------
    def evaluate(self, task: Task, source: str, prebuilt: BuildResult | None = None) -> Verdict:
        t_start = time.monotonic()
        run = Evidence()
        run.details["sandbox"] = self.sandbox_level
        run.details["threads"] = self.threads
        self._static_scan(source, task, run)
        if prebuilt is None:
            # Plain PyTorch candidates have nothing to compile: their import in the evaluation
            # process (under the build time limit) is the build.
            prebuilt = self.build(task, source) if NEEDS_BUILD_RE.search(source) else BuildResult(True, 0.0)
        run.build_s = round(prebuilt.build_s, 3)
        if not prebuilt.ok:
            verdict, fid = ERROR_VERDICTS.get(prebuilt.kind, ("build_error", "build-failed"))
            if prebuilt.kind in ("runtime", "crash"):
                verdict, fid = "build_error", "build-failed"
            run.add(fid, prebuilt.error.splitlines()[0][:300] if prebuilt.error else "build failed")
            run.details["error"] = prebuilt.error
            return self._verdict(verdict, run, t_start)
        pace = measure_pace(self.device, self.threads)
        run.details["pace_ms"] = round(pace, 4)
        run.details["pace_best_ms"] = round(best_pace(cache_root(self.config) / "pace.json", f"{self.device_name}|{self.device}", pace), 4)
        try:
            timing = self._measure(task, source, run, self.device)
        except Stop as stop:
            if stop.finding:
                run.add(stop.finding.id, stop.finding.message)
            if stop.error:
                run.details["error"] = stop.error
            return self._verdict(stop.verdict, run, t_start)
        speedup = timing.ref_ms / timing.cand_ms if timing.cand_ms > 0 else None
        rejects = [f for f in run.findings if f.severity == "reject"]
        if not rejects and speedup and self._suspicious(task, speedup):
            timing = self._remeasure(task, source, run, timing)
            speedup = timing.ref_ms / timing.cand_ms
            rejects = [f for f in run.findings if f.severity == "reject"]
        ref_ms, cand_ms = timing.ref_ms, timing.cand_ms
        run.details.update(ref_ms=ref_ms, candidate_ms=cand_ms)
        run.timing = timing
        if rejects and all(f.id in INCORRECT_IDS for f in rejects):
            return self._verdict("incorrect", run, t_start, ref_ms=ref_ms, cand_ms=cand_ms)
        if rejects:
            return self._verdict("rejected", run, t_start, correct=True, ref_ms=ref_ms, cand_ms=cand_ms)
        if not run.strict_ok:
            run.add("strict-tolerance-fails", f"outputs match within {self.config.atol:g} but not within {self.config.strict_tol:g}")
        if contains_one(timing.ci):
            run.add("speedup-not-significant", f"the speedup's 95% interval {timing.ci[0]:.2f}x-{timing.ci[1]:.2f}x "
                                                       "contains 1.0: not measurably faster or slower than the reference")
        lower_ids = ("lower-precision", "lower-precision-flags", "tf32-enabled")
        if any(f.id in lower_ids for f in run.findings):
            # Lower precision is allowed but never silent: each such warning carries the 1e-4 result,
            # and reports keep these candidates apart (details.lower_precision).
            note = f" (outputs {'hold' if run.strict_ok else 'do not hold'} at {self.config.strict_tol:g})"
            run.findings = [replace(f, message=f.message + note) if f.id in lower_ids else f for f in run.findings]
            run.details["lower_precision"] = True
        return self._verdict("accepted", run, t_start, correct=True, ref_ms=ref_ms, cand_ms=cand_ms, speedup=speedup)

    def _static_scan(self, source: str, task: Task, run: Evidence):
        from .catalogue import scan_source

        for f in scan_source(source, reference_source=task.source):
            run.add(f.id, f.message)

    def _suspicious(self, task: Task, speedup: float) -> bool:
        c = self.config
        threshold = c.remeasure_threshold_l1 if task.level == 1 else c.remeasure_threshold
        return speedup > threshold or (c.best_speedup is not None and speedup > c.remeasure_best_factor * c.best_speedup)

    def _remeasure(self, task, source, run, first: Timing) -> Timing:
        """Fresh processes, fresh seeds, another GPU when there is one; the lower speedup stands."""
        device = self.device
        if device.startswith("cuda") and torch.cuda.device_count() > 1:
            index = int(device.split(":")[1]) if ":" in device else 0
            device = f"cuda:{(index + 1) % torch.cuda.device_count()}"
        speedup = first.ref_ms / first.cand_ms
        try:
            again = self._measure(task, source, run, device)
        except Stop as stop:
            if stop.finding:
                run.add(stop.finding.id, "on re-measurement: " + stop.finding.message)
            return first
        s2 = again.ref_ms / again.cand_ms
        run.details["remeasured"] = {"device": device, "speedup": s2, "ref_ms": again.ref_ms, "candidate_ms": again.cand_ms}
        if abs(s2 - speedup) / max(s2, speedup) > self.config.remeasure_tolerance:
            run.add("remeasure-disagrees", f"speedup {speedup:.2f}x re-measured as {s2:.2f}x in fresh processes; the lower stands")
        return again if s2 < speedup else first

    # --- stages 2-5 -----------------------------------------------------------------------------------
    def _measure(self, task: Task, source: str, run: Evidence, device: str):
        # The candidate's process: started by the previous evaluation of a batch when this source
        # was next in line, otherwise now, so that it imports torch while the reference works
        # (nothing is timed before both are ready).
        slot = self._candidate_slot(source, device)
        run.details.setdefault("process_prestarted", slot.prestarted)  # the first measurement's
        return Measurement(self, task, source, run, device, slot).run_all()

    def wait_for_spare(self):
        """The next job's processes must be idle (imports done) before anything is timed. They
        touch the device only after the timing (`warm_spares`)."""
        if self._spare is not None:
            self._spare.proc.wait_ready(self.config.run_timeout_s)
        spare_ref, self._spare_ref = self._spare_ref, None
        if spare_ref is not None and spare_ref.proc is not None and spare_ref.proc.poll() is None:
            spare_ref.wait_ready(self.config.run_timeout_s)
            self._spare_ref_waiting = spare_ref

    def warm_spares(self):
        """Once the running evaluation's timing is done: the next job's processes create their
        CUDA context (cuBLAS, and the profiler for a candidate whose kernels are listed) while
        this one profiles, audits and closes, rather than before its timing (on an H200 waiting
        for the spares there took 3.8-6 s an evaluation, imports included). Whoever takes a
        process over waits for what is left of its warm-up."""
        spare_ref, self._spare_ref_waiting = self._spare_ref_waiting, None
        for proc in (self._spare.proc if self._spare is not None else None, spare_ref):
            if proc is not None:
                proc.warm_ahead()

    def check_reference_process(self, proc: WorkerProcess, run: Evidence):
        """Before each reference round: nobody reniced, re-pinned, rescheduled or stopped the
        reference's process (another process of the same user could, under the basic sandbox
        without namespaces). It is restored; what cannot be restored ends the evaluation."""
        if proc.proc is None or proc.settings is None:
            return
        want = proc.settings
        problems = sandbox.process_tampering(proc.proc.pid, want.nice, want.affinity, want.policy)
        if problems:
            run.add("reference-process-tampered", "the reference's process was changed from outside: " + "; ".join(problems[:3]))
            left = sandbox.restore_process(proc.proc.pid, want.nice, want.affinity, want.policy)
            if left:
                raise Stop("rejected", error="the reference's process could not be restored: " + "; ".join(left))

    def check_ghost_kernels(self, source: str, run: Evidence):
        declared = declared_kernels(source)
        if not declared or not run.kernels:
            return
        names = " ".join(k["name"] for k in run.kernels)
        if not any(d in names for d in declared):
            run.add("ghost-kernel", f"declares kernel(s) {', '.join(sorted(declared))} but none ran; the work was done by other kernels")

    def _verdict(self, verdict: str, run: Evidence, t_start: float, correct: bool = False, ref_ms=None, cand_ms=None, speedup=None) -> Verdict:
        t = run.timing
        accepted = verdict == "accepted" and speedup is not None and t is not None
        return Verdict(
            verdict=verdict, correct=correct if verdict in ("accepted", "rejected") else False,
            speedup=round(speedup, 4) if (speedup is not None and verdict == "accepted") else None,
            ref_ms=_r(ref_ms), candidate_ms=_r(cand_ms), max_abs_error=run.max_abs_error,
            findings=tuple(run.findings), device=self.device_name, torch=self.torch_version,
            kernels=tuple(KernelShare(k["name"], round(k["share"], 4), k.get("calls", 0)) for k in run.kernels),
            build_s=run.build_s, eval_s=round(time.monotonic() - t_start, 3), details=VerdictDetails.from_json(run.details),
            speedup_ci=(round(t.ci[0], 4), round(t.ci[1], 4)) if accepted and t.ci else None,
            ref_cv=_r(t.ref_cv) if t else None, candidate_cv=_r(t.cand_cv) if t else None,
            floor_ms=_r(t.floor_ms) if t else None,
        )

    # --- many candidates ---------------------------------------------------------------------------------
    def evaluate_many(self, jobs: list[tuple[Task, str]], build_workers: int = 2, on_result=None) -> list[Verdict]:
        """Builds run ahead on a pool of CPU workers; evaluations run one at a time on the device,
        each next job's process starting while the current one is judged (never while timing)."""
        results: list[Verdict | None] = [None] * len(jobs)
        try:
            with ThreadPoolExecutor(max_workers=max(1, build_workers)) as pool:
                builds = [pool.submit(self.build, t, s) for t, s in jobs]
                for i, ((task, source), fut) in enumerate(zip(jobs, builds)):
                    # While this job is judged, the next one's process starts (before any timing).
                    self._upcoming = jobs[i + 1] if i + 1 < len(jobs) else None
                    try:
                        results[i] = self.evaluate(task, source, prebuilt=fut.result())
                    except Exception as e:  # noqa: BLE001 - one broken job must not stop the others
                        log.exception("evaluation %d failed inside the judge", i)
                        results[i] = Verdict("runtime_error", False, None, None, None, None,
                                             (finding("crash", f"judge error: {type(e).__name__}: {e}"),),
                                             self.device_name, self.torch_version, details=VerdictDetails(error=str(e)))
                    if on_result:
                        on_result(i, results[i])
        finally:
            self._upcoming = None
            self.close()
        return results  # type: ignore[return-value]


def _r(x):
    return None if x is None else round(float(x), 6)


def evaluate(task: Task, candidate_source: str, device: str = "auto", config: JudgeConfig | None = None) -> Verdict:
    """Judge one candidate source against its task. Never raises for a bad candidate."""
    return Judge(device, config).evaluate(task, candidate_source)


def evaluate_many(jobs: list[tuple[Task, str]], device: str = "auto", config: JudgeConfig | None = None,
                  build_workers: int = 2, on_result=None) -> list[Verdict]:
    return Judge(device, config).evaluate_many(jobs, build_workers=build_workers, on_result=on_result)


__all__ = ["Judge", "BuildResult", "evaluate", "evaluate_many", "concise_build_error"]
