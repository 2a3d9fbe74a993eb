"""The judge's stages: build -> load -> check -> time -> audit, each in worker processes.

``evaluate`` is the one entry point; `Judge` keeps settings (device, config, sandbox level)
for many evaluations, and `evaluate_many` overlaps builds on a CPU pool with timing on the
device.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import torch

from ..tasks.contract import Task
from . import sandbox
from .compare import compare_leaves, compare_samples
from .config import JudgeConfig
from .device import device_name, resolve_device
from .process import WorkerDied, WorkerProcess, WorkerSpec, WorkerTimeout
from .pace import measure_pace, pace_agrees
from .reference import ReferenceData, cache_root, cached_reference, publish
from .verdict import Finding, KernelShare, Verdict

log = logging.getLogger(__name__)

INCORRECT_IDS = {"output-mismatch", "output-shape-mismatch", "output-dtype-mismatch", "output-device-mismatch", "nonfinite-output"}
KERNEL_DECL_RE = re.compile(r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+(\w+)")
NEEDS_BUILD_RE = re.compile(r"load_inline|cpp_extension|triton|torch\.compile|cupy")
TRITON_DECL_RE = re.compile(r"@triton\.jit[^\n]*\n(?:\s*@[^\n]*\n)*\s*def\s+(\w+)")


class _Stop(Exception):
    """Ends an evaluation early with a verdict."""

    def __init__(self, verdict: str, finding: Finding | None = None, error: str = ""):
        self.verdict, self.finding, self.error = verdict, finding, error


@dataclass
class BuildResult:
    ok: bool
    build_s: float
    error: str = ""
    kind: str = ""
    cached: bool = False


@dataclass
class _Run:
    """Mutable state of one evaluation."""

    findings: list[Finding] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    max_abs_error: float | None = None
    strict_ok: bool = True
    kernels: list = field(default_factory=list)
    build_s: float | None = None

    def add(self, id_: str, severity: str, message: str):
        if not any(f.id == id_ and f.message == message for f in self.findings):
            self.findings.append(Finding(id_, severity, message))


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


def _toolchain_id() -> str:
    nvcc = shutil.which("nvcc") or ""
    return f"torch{torch.__version__}|cuda{torch.version.cuda}|{nvcc}"


def concise_build_error(text: str, limit: int = 12) -> str:
    """The first compiler errors of a build log (what an LLM policy needs to fix it)."""
    lines = text.splitlines()
    picked = [ln.strip() for ln in lines if re.search(r"\berror\b|Error:|undefined reference|fatal", ln)]
    picked = [ln for ln in picked if not ln.startswith("ninja: build stopped")]
    if not picked:
        picked = [ln.strip() for ln in lines if ln.strip()][-limit:]
    seen, out = set(), []
    for ln in picked:
        if ln not in seen:
            seen.add(ln)
            out.append(ln[:400])
    return "\n".join(out[:limit])


class Judge:
    """Evaluates candidates on one device with one configuration."""

    def __init__(self, device: str = "auto", config: JudgeConfig | None = None):
        self.config = config or JudgeConfig()
        self.device = resolve_device(device)
        self.sandbox_level = sandbox.resolve_level(self.config.sandbox)
        self.threads = self.config.threads or (os.cpu_count() or 1)
        self.device_name = device_name(self.device) if self.device.startswith("cuda") else device_name("cpu").split(" (")[0] + f" ({self.threads} threads)"
        self.torch_version = torch.__version__
        # evaluate_many: the job after the current one, and its process once started early.
        self._upcoming: tuple[Task, str] | None = None
        self._spare: _Slot | None = None

    # --- candidate processes -------------------------------------------------------------------
    def _start_slot(self, source: str, device: str) -> _Slot:
        work = tempfile.mkdtemp(prefix="cudal1-eval-")
        proc = WorkerProcess(self._spec("candidate", work, self.build_dir(source), device))
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

    def _prestart_upcoming(self):
        """Start the next job's process (spawn, sandbox, torch import) while this one is judged.
        A spare for a job that never came (its build failed) is replaced."""
        if self._upcoming is None or not self._prestarting():
            self.close()
            return
        if self._spare is not None and self._spare.key == _slot_key(self._upcoming[1], self.device):
            return
        self.close()
        try:
            self._spare = self._start_slot(self._upcoming[1], self.device)
        except OSError as e:  # the next job then starts its own process, as without a batch
            log.warning("could not start the next candidate's process ahead: %s", e)

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
        h = hashlib.sha256((source + "|" + _toolchain_id() + "|" + self.device_name).encode()).hexdigest()[:20]
        d = cache_root(self.config) / "builds" / h
        d.mkdir(parents=True, exist_ok=True)
        return str(d)

    def _spec(self, role: str, work_dir: str, build_dir: str, device: str | None = None) -> WorkerSpec:
        c = self.config
        return WorkerSpec(role=role, device=device or self.device, work_dir=work_dir, build_dir=build_dir,
                          sandbox_level=self.sandbox_level, threads=self.threads, cpu_time_limit_s=c.cpu_time_limit_s,
                          file_size_limit_mb=c.file_size_limit_mb, max_processes=c.max_processes, memory_limit_gb=c.memory_limit_gb,
                          hidden=(str(cache_root(c)),))

    def build(self, task: Task, source: str) -> BuildResult:
        """Import the candidate once in a sandboxed process (compiling its extensions into the
        build folder keyed by source and toolchain); later imports reuse the compiled code."""
        build_dir = self.build_dir(source)
        marker = os.path.join(build_dir, "built.ok")
        if os.path.exists(marker):
            # Built before with this toolchain: the evaluation's import reuses the compiled code.
            return BuildResult(True, 0.0, cached=True)
        with tempfile.TemporaryDirectory(prefix="cudal1-build-") as work:
            t0 = time.monotonic()
            try:
                with WorkerProcess(self._spec("candidate", work, build_dir)) as w:
                    reply = w.request("setup", self.config.build_timeout_s, **self._setup_fields(task, source, work, 0, build_only=True))
                    tail = w.log_tail(20000)
            except WorkerTimeout:
                return BuildResult(False, time.monotonic() - t0, f"the build took longer than {self.config.build_timeout_s:.0f} s", "timeout")
            except WorkerDied as e:
                return BuildResult(False, time.monotonic() - t0, f"{e}\n{concise_build_error(e.log_tail)}", "crash")
        if not reply.get("ok"):
            err = reply.get("error", "")
            if "Error building extension" in err or "error" in tail.lower():
                err = concise_build_error(tail + "\n" + err)
            return BuildResult(False, time.monotonic() - t0, err, reply.get("error_kind", "import"))
        open(marker, "w").close()
        return BuildResult(True, time.monotonic() - t0)

    def _setup_fields(self, task: Task, source: str | None, out_dir: str, init_seed: int, build_only: bool = False) -> dict:
        return {"device": self.device, "out_dir": out_dir, "threads": self.threads, "task_source": task.source, "size": task.size,
                "candidate_source": source, "init_seed": init_seed, "build_only": build_only,
                "gpu_memory_fraction": self.config.gpu_memory_fraction}

    # --- the whole evaluation --------------------------------------------------------------------------
    def evaluate(self, task: Task, source: str, prebuilt: BuildResult | None = None) -> Verdict:
        t_start = time.monotonic()
        run = _Run()
        run.details["sandbox"] = self.sandbox_level
        self._static_scan(source, task, run)
        if prebuilt is None:
            # Plain PyTorch candidates have nothing to compile: their import in the evaluation
            # process (under the build time limit) is the build.
            prebuilt = self.build(task, source) if NEEDS_BUILD_RE.search(source) else BuildResult(True, 0.0)
        run.build_s = round(prebuilt.build_s, 3)
        if not prebuilt.ok:
            kind = {"timeout": "timeout", "missing-modelnew": "build_error", "signature-mismatch": "build_error", "exit": "runtime_error"}.get(prebuilt.kind, "build_error")
            fid = {"timeout": "timeout", "missing-modelnew": "missing-modelnew", "signature-mismatch": "signature-mismatch", "exit": "candidate-exit"}.get(prebuilt.kind, "build-failed")
            run.add(fid, "reject", prebuilt.error.splitlines()[0][:300] if prebuilt.error else "build failed")
            run.details["error"] = prebuilt.error
            return self._verdict(kind, run, t_start)
        ref = cached_reference(task, self.device_name, self.torch_version, self.config, self.threads)
        pace = measure_pace(self.device, self.threads)
        if ref.complete and not pace_agrees(ref.pace_ms, pace, self.config.pace_tolerance):
            # The machine is not running as it was when the reference was timed (other load,
            # other clocks): its cached timings would skew the speedup, so time it again.
            run.details["reference_retimed"] = {"cached_pace_ms": ref.pace_ms, "pace_ms": round(pace, 4)}
            ref = cached_reference(task, self.device_name, self.torch_version,
                                   replace(self.config, reference_cache_max_age_s=0.0), self.threads)
        live = not ref.complete
        if live:
            ref.pace_ms = pace
        run.details["reference_cached"] = not live
        run.details["pace_ms"] = round(pace, 4)
        try:
            speedup_times = self._measure(task, source, ref, live, run, self.device)
        except _Stop as stop:
            if stop.finding:
                run.add(stop.finding.id, stop.finding.severity, stop.finding.message)
            if stop.error:
                run.details["error"] = stop.error
            if not ref.complete:
                shutil.rmtree(ref.folder, ignore_errors=True)
            return self._verdict(stop.verdict, run, t_start)
        ref_ms, cand_ms = speedup_times
        if live:
            publish(ref, self.config)
            if not self.config.reference_cache:
                shutil.rmtree(ref.folder, ignore_errors=True)
        speedup = ref_ms / cand_ms if cand_ms > 0 else None
        rejects = [f for f in run.findings if f.severity == "reject"]
        if not rejects and speedup and self._suspicious(task, speedup):
            ref_ms, cand_ms, speedup = self._remeasure(task, source, run, ref_ms, cand_ms, speedup)
            rejects = [f for f in run.findings if f.severity == "reject"]
        run.details.update(ref_ms=ref_ms, candidate_ms=cand_ms)
        if any(f.id in INCORRECT_IDS for f in rejects) and not any(f.id not in INCORRECT_IDS for f in rejects):
            return self._verdict("incorrect", run, t_start, ref_ms=ref_ms, cand_ms=cand_ms)
        if rejects:
            return self._verdict("rejected", run, t_start, correct=True, ref_ms=ref_ms, cand_ms=cand_ms)
        if not run.strict_ok:
            run.add("strict-tolerance-fails", "warn", f"outputs match within {self.config.atol:g} but not within {self.config.strict_tol:g}")
        lower_ids = ("lower-precision", "lower-precision-flags", "tf32-enabled")
        if any(f.id in lower_ids for f in run.findings):
            # Lower precision is allowed but never silent: each such warning carries the 1e-4 result,
            # and reports keep these candidates apart (details.lower_precision).
            note = f" (outputs {'hold' if run.strict_ok else 'do not hold'} at {self.config.strict_tol:g})"
            run.findings = [Finding(f.id, f.severity, f.message + note) if f.id in lower_ids else f for f in run.findings]
            run.details["lower_precision"] = True
        return self._verdict("accepted", run, t_start, correct=True, ref_ms=ref_ms, cand_ms=cand_ms, speedup=speedup)

    def _static_scan(self, source: str, task: Task, run: _Run):
        try:
            from .catalogue import scan_source
        except ImportError:
            run.details["static_scan"] = "unavailable"
            return
        try:
            found = scan_source(source, reference_source=task.source)
        except Exception as e:  # noqa: BLE001 - a scanner bug must not hide the runtime checks
            log.exception("static scan failed")
            run.details["static_scan"] = f"failed: {type(e).__name__}: {e}"
            return
        for f in found:
            run.add(f.id, f.severity, f.message)

    def _suspicious(self, task: Task, speedup: float) -> bool:
        c = self.config
        threshold = c.remeasure_threshold_l1 if task.level == 1 else c.remeasure_threshold
        return speedup > threshold or (c.best_speedup is not None and speedup > c.remeasure_best_factor * c.best_speedup)

    def _remeasure(self, task, source, run, ref_ms, cand_ms, speedup):
        """Fresh processes, fresh seeds, live reference, another GPU when there is one."""
        device = self.device
        if device.startswith("cuda") and torch.cuda.device_count() > 1:
            index = int(device.split(":")[1]) if ":" in device else 0
            device = f"cuda:{(index + 1) % torch.cuda.device_count()}"

        fresh = cached_reference(task, self.device_name, self.torch_version, replace(self.config, reference_cache=False), self.threads)
        try:
            r2, c2 = self._measure(task, source, fresh, True, run, device)
        except _Stop as stop:
            if stop.finding:
                run.add(stop.finding.id, stop.finding.severity, "on re-measurement: " + stop.finding.message)
            return ref_ms, cand_ms, speedup
        finally:
            shutil.rmtree(fresh.folder, ignore_errors=True)
        s2 = r2 / c2
        run.details["remeasured"] = {"device": device, "speedup": s2, "ref_ms": r2, "candidate_ms": c2}
        if abs(s2 - speedup) / max(s2, speedup) > self.config.remeasure_tolerance:
            run.add("remeasure-disagrees", "warn", f"speedup {speedup:.2f}x re-measured as {s2:.2f}x in fresh processes; the lower stands")
        return (r2, c2, s2) if s2 < speedup else (ref_ms, cand_ms, speedup)

    # --- check and time ---------------------------------------------------------------------------------
    def _measure(self, task: Task, source: str, ref: ReferenceData, live: bool, run: _Run, device: str) -> tuple[float, float]:
        c = self.config
        seeds = ref.seeds
        stages: dict[str, float] = {}
        mark = [time.monotonic()]

        def stage(name: str):
            now = time.monotonic()
            stages[name] = round(stages.get(name, 0.0) + now - mark[0], 3)
            mark[0] = now

        run.details.setdefault("stage_s", stages)
        # The candidate's process: started by the previous evaluation of a batch when this source
        # was next in line, otherwise now, so that it imports torch while the reference works
        # (nothing is timed before both are ready).
        slot = self._candidate_slot(source, device)
        run.details.setdefault("process_prestarted", slot.prestarted)  # the first measurement's
        work, cand = slot.work, slot.proc
        ref_dir = ref.folder
        ref_worker = WorkerProcess(self._spec("reference", ref_dir, ref_dir, device)) if live else None
        try:
            deadline = time.monotonic() + c.run_timeout_s
            self._prestart_upcoming()
            if ref_worker:
                ref_worker.start()
                self._ask(ref_worker, "setup", c.run_timeout_s * 2, who="reference",
                          **{**self._setup_fields(task, None, ref_dir, seeds.init_seed), "device": device})
                reply = self._ask(ref_worker, "trials", c.run_timeout_s * 2, who="reference", trials=seeds.trials, poison_bytes=0)
                ref.trials = {t["name"]: t for t in reply["trials"]}
                first = reply["trials"][0]
                ref.stochastic = first.get("same_seed_equal", True) and not first.get("other_seed_equal", True)
                ref.nondeterministic = not first.get("same_seed_equal", True)
                stage("reference_setup_trials")
            run.details["sandbox_applied"] = cand.sandbox_description
            reply = self._ask(cand, "setup", min(c.build_timeout_s, max(1.0, deadline - time.monotonic()) + c.build_timeout_s),
                              **{**self._setup_fields(task, source, work, seeds.init_seed), "device": device})
            self._take_findings(reply, run)
            stage("candidate_setup")
            if ref.stochastic:
                run.add("stochastic-reference", "warn", "the reference draws random numbers in forward; outputs are compared under identical RNG state")
            if ref.nondeterministic:
                run.add("nondeterministic-reference", "warn", "the reference gives different outputs for the same seed; comparisons may be unreliable")
            out_bytes = sum(_numel(l) * 4 for l in ref.trials[seeds.trials[0]["name"]]["leaves"])
            reply = self._ask(cand, "trials", _left(deadline), trials=seeds.trials, poison_bytes=max(out_bytes * 2, 64 << 20))
            self._take_findings(reply, run)
            stage("candidate_trials")
            self._check_trials(ref, reply["trials"], run)
            stage("compare_trials")
            if self._spare is not None:
                # The next job's process must be idle (imports done) before anything is timed.
                self._spare.proc.wait_ready(c.run_timeout_s)
                stage("wait_next_process")
            self._ask(cand, "warmup", _left(deadline), seed=seeds.warmup_seed, calls=c.warmup)
            if ref_worker:
                self._ask(ref_worker, "warmup", c.run_timeout_s * 2, who="reference", seed=seeds.warmup_seed, calls=c.warmup)
            cand_times, cand_walls = [], []
            for r, round_seeds in enumerate(seeds.rounds):
                name = f"r{r}"
                if ref_worker:  # alternate: reference round, then candidate round
                    rr = self._ask(ref_worker, "time", c.run_timeout_s * 2, who="reference", seeds=round_seeds, name=name,
                                   sample_key=seeds.sample_key)
                    ref.times_ms.append(rr["times_ms"])
                    ref.wall_ms.append(rr["wall_ms"])
                    ref.samples[name] = rr["samples_path"]
                    ref.last[name] = os.path.join(ref_dir, f"timed_{name}_last.pt")
                cr = self._ask(cand, "time", _left(deadline), seeds=round_seeds, name=name, sample_key=seeds.sample_key)
                self._take_findings(cr, run)
                cand_times.append(cr["times_ms"])
                cand_walls.append(cr["wall_ms"])
                stage("timing")
                self._check_timed(ref, name, cr["samples_path"], os.path.join(work, f"timed_{name}_last.pt"), run)
                stage("compare_timed")
            if device.startswith("cuda") and c.profile_kernels:
                pr = self._ask(cand, "profile", _left(deadline), seed=seeds.warmup_seed, calls=3)
                run.kernels = pr.get("kernels", [])
                if live and ref_worker:
                    ref.kernels = self._ask(ref_worker, "profile", c.run_timeout_s, who="reference", seed=seeds.warmup_seed, calls=3).get("kernels", [])
                self._check_ghost_kernels(source, run)
                stage("profile")
            audit = self._ask(cand, "audit", _left(deadline))
            self._take_findings(audit, run)
            stage("audit")
        finally:
            slot.close()
            if ref_worker:
                ref_worker.close()
        self._check_wallclock(cand_times, cand_walls, run)
        flat_c = [t for r in cand_times for t in r]
        flat_r = [t for r in ref.times_ms for t in r]
        ref_ms, cand_ms = statistics.median(flat_r), statistics.median(flat_c)
        run.details.update(
            ref_times_ms=flat_r, candidate_times_ms=flat_c,
            candidate_spread=_spread(flat_c), ref_spread=_spread(flat_r),
            round_medians={"reference": [statistics.median(r) for r in ref.times_ms], "candidate": [statistics.median(r) for r in cand_times]},
            ref_kernels=ref.kernels[:10], strict_tol_ok=run.strict_ok, device_used=device,
        )
        return ref_ms, cand_ms

    def _ask(self, worker: WorkerProcess, op: str, timeout: float, who: str = "candidate", **fields) -> dict:
        try:
            reply = worker.request(op, max(timeout, 1.0), **fields)
        except WorkerTimeout as e:
            if who == "reference":
                raise RuntimeError(f"the reference timed out: {e}") from None
            raise _Stop("timeout", Finding("timeout", "reject", f"{op}: {e}")) from None
        except WorkerDied as e:
            if who == "reference":
                raise RuntimeError(f"the reference process died: {e}\n{e.log_tail}") from None
            raise _Stop("runtime_error", Finding("crash", "reject", f"{op}: {e}"), error=f"{e}\n{e.log_tail[-2000:]}") from None
        if not reply.get("ok"):
            if who == "reference":
                raise RuntimeError(f"the reference failed in {op}: {reply.get('error')}")
            kind = reply.get("error_kind", "runtime")
            if kind == "exit":
                raise _Stop("runtime_error", Finding("candidate-exit", "reject", reply.get("error", "")), error=reply.get("error", ""))
            if kind in ("missing-modelnew", "signature-mismatch"):
                raise _Stop("build_error", Finding(kind, "reject", reply.get("error", "")), error=reply.get("error", ""))
            err = reply.get("error", "")
            if _looks_sandboxed(err):
                raise _Stop("runtime_error", Finding("sandbox-denied", "reject", err[:300]), error=err)
            if op == "setup" and kind in ("import", "syntax"):
                raise _Stop("build_error", Finding("build-failed", "reject", err.splitlines()[0][:300] if err else "import failed"), error=err)
            raise _Stop("runtime_error", Finding("crash", "reject", f"{op}: {err.splitlines()[0][:300] if err else 'failed'}"), error=err)
        return reply

    def _take_findings(self, reply: dict, run: _Run):
        for f in reply.get("findings", []):
            run.add(f["id"], f["severity"], f["message"])

    def _check_trials(self, ref: ReferenceData, cand_trials: list[dict], run: _Run):
        c = self.config
        main_ok, probe_problems = True, []
        for ct in cand_trials:
            rt = ref.trials[ct["name"]]
            if ct["mutated"]:
                run.add("input-mutated", "reject", f"trial {ct['name']}: the program changed its input(s) {ct['mutated']} in place")
            if _fingerprints_differ(rt["fingerprint"], ct["fingerprint"]):
                run.add("input-generation-tampered", "reject", f"trial {ct['name']}: the inputs the program received differ from the reference's")
            ref_vals = torch.load(rt["path"], weights_only=True)
            cand_vals = torch.load(ct["path"], weights_only=True)
            cmp = compare_leaves(rt["leaves"], ref_vals, ct["leaves"], cand_vals, c.atol, c.rtol, c.strict_tol, f"trial {ct['name']}")
            if cmp.max_abs_error is not None:
                run.max_abs_error = max(run.max_abs_error or 0.0, cmp.max_abs_error)
            run.strict_ok = run.strict_ok and cmp.strict_ok
            if cmp.ok:
                continue
            if ct["name"].startswith("p_") and all(p[0] in ("output-mismatch", "nonfinite-output") for p in cmp.problems):
                probe_problems += cmp.problems
                continue
            main_ok = False
            for fid, msg in cmp.problems[:3]:
                sev = "reject"
                run.add(fid, sev, msg)
        if probe_problems and main_ok:
            run.add("input-specialized", "reject",
                    "correct on the task's input distribution but not on other values of the same shapes: " + probe_problems[0][1])
        if not main_ok or any(f.severity == "reject" and f.id in INCORRECT_IDS | {"output-not-tensor", "unwritten-output"} for f in run.findings):
            verdict = "incorrect" if all(f.id in INCORRECT_IDS for f in run.findings if f.severity == "reject") else "rejected"
            raise _Stop(verdict)

    def _check_timed(self, ref: ReferenceData, name: str, cand_samples_path: str, cand_last_path: str, run: _Run):
        c = self.config
        rs = torch.load(ref.samples[name], weights_only=True)
        cs = torch.load(cand_samples_path, weights_only=True)
        checked, bad = compare_samples(rs, cs, c.atol, c.rtol)
        if bad:
            run.add("timed-output-mismatch", "reject", f"{bad} of {checked} timed calls in round {name} returned wrong values (sampled check)")
        ref_last = torch.load(ref.last[name], weights_only=True)
        cand_last = torch.load(cand_last_path, weights_only=True)
        infos = [{"exact": True, "device": "", "type": ""} for _ in ref_last]
        cmp = compare_leaves(infos, ref_last, infos, cand_last, c.atol, c.rtol, c.strict_tol, f"last timed call of {name}")
        if not cmp.ok:
            run.add("timed-output-mismatch", "reject", cmp.problems[0][1])

    def _check_wallclock(self, times: list[list[float]], walls: list[list[float]], run: _Run):
        t = sum(x for r in times for x in r)
        w = sum(x for r in walls for x in r)
        n = sum(len(r) for r in times)
        slack_ms = 0.2 * n  # launch and synchronize latency per call
        run.details["wallclock"] = {"timed_ms": t, "wall_ms": w}
        if t < w * (1 - self.config.wallclock_tolerance) - slack_ms:
            run.add("wallclock-mismatch", "reject", f"timed calls sum to {t:.3f} ms but took {w:.3f} ms of wall-clock time")

    def _check_ghost_kernels(self, source: str, run: _Run):
        declared = set(KERNEL_DECL_RE.findall(source)) | set(TRITON_DECL_RE.findall(source))
        if not declared or not run.kernels:
            return
        names = " ".join(k["name"] for k in run.kernels)
        if not any(d in names for d in declared):
            run.add("ghost-kernel", "warn", f"declares kernel(s) {', '.join(sorted(declared))} but none ran; the work was done by other kernels")

    def _verdict(self, verdict: str, run: _Run, t_start: float, correct: bool = False, ref_ms=None, cand_ms=None, speedup=None) -> Verdict:
        return Verdict(
            verdict=verdict, correct=correct if verdict in ("accepted", "rejected") else False,
            speedup=round(speedup, 4) if (speedup is not None and verdict == "accepted") else None,
            ref_ms=_r(ref_ms), candidate_ms=_r(cand_ms), max_abs_error=run.max_abs_error,
            findings=tuple(run.findings), device=self.device_name, torch=self.torch_version,
            kernels=tuple(KernelShare(k["name"], round(k["share"], 4), k.get("calls", 0)) for k in run.kernels),
            build_s=run.build_s, eval_s=round(time.monotonic() - t_start, 3), details=run.details,
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
                                             (Finding("crash", "reject", f"judge error: {type(e).__name__}: {e}"),),
                                             self.device_name, self.torch_version, details={"error": str(e)})
                    if on_result:
                        on_result(i, results[i])
        finally:
            self._upcoming = None
            self.close()
        return results  # type: ignore[return-value]


def _numel(info: dict) -> int:
    n = 1
    for s in info.get("shape", []):
        n *= s
    return n


def _left(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())


def _r(x):
    return None if x is None else round(float(x), 6)


def _spread(xs: list[float]) -> dict:
    if len(xs) < 2:
        return {}
    q = statistics.quantiles(xs, n=4)
    med = statistics.median(xs)
    return {"iqr_over_median": (q[2] - q[0]) / med if med else None, "min": min(xs), "max": max(xs),
            "cv": statistics.pstdev(xs) / statistics.mean(xs) if statistics.mean(xs) else None}


def _fingerprints_differ(a: list, b: list) -> bool:
    if len(a) != len(b):
        return True
    for x, y in zip(a, b):
        if x.get("shape") != y.get("shape") or x.get("dtype") != y.get("dtype") or x.get("value") != y.get("value"):
            return True
        for k in ("sum", "abs"):
            if k in x and abs(x[k] - y[k]) > 1e-6 * max(1.0, abs(x[k])):
                return True
    return False


def _looks_sandboxed(err: str) -> bool:
    return any(s in err for s in ("Network is unreachable", "Read-only file system", "Permission denied", "Operation not permitted",
                                  "Temporary failure in name resolution", "Name or service not known"))


def evaluate(task: Task, candidate_source: str, device: str = "auto", config: JudgeConfig | None = None) -> Verdict:
    """Judge one candidate source against its task. Never raises for a bad candidate."""
    return Judge(device, config).evaluate(task, candidate_source)


def evaluate_many(jobs: list[tuple[Task, str]], device: str = "auto", config: JudgeConfig | None = None,
                  build_workers: int = 2, on_result=None) -> list[Verdict]:
    return Judge(device, config).evaluate_many(jobs, build_workers=build_workers, on_result=on_result)


__all__ = ["Judge", "BuildResult", "evaluate", "evaluate_many", "concise_build_error"]
