"""Stages 2-5 of one evaluation: load, check, time and audit, with the reference and the candidate
each in its own process and every decision made here, in the parent.

- load: both processes execute the task module; the reference builds ``Model`` (and a float64
  copy), the candidate's process imports the candidate and builds ``ModelNew``, both under the
  same seed.
- check: correctness trials (fresh seeds, input probes and parameter probes); the parent reads
  every output file, compares structure, aliasing, values (against the float64 reference),
  inputs after the call and the previous call's output read again.
- time: rounds alternate reference and candidate; every timed call's complete output is
  compared here; the parent's own clock for each round is set against the times reported.
- audit: the candidate's process reports what it saw (evidence only).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from ..tasks.contract import Task
from .compare import REF_ERROR_FACTOR, compare_calls, fingerprints_differ, same_values
from .protocol import (ERROR_VERDICTS, Audit, Failure, Profile, ProtocolError, Setup, SetupDone, TimeRound, Trials,
                       Warmup, call_file)
from . import refpool
from .reference import Seeds, cache_root
from .transfer import CallRecord, read_call
from .verdict import Finding

INCORRECT_IDS = {"output-mismatch", "output-shape-mismatch", "output-dtype-mismatch", "output-device-mismatch", "nonfinite-output"}
# Wrong outputs in the trials end the evaluation (nothing to time); other reject findings (the
# static scan's, say) do not, so the verdict also carries what the run-time checks saw.
STOP_IDS = INCORRECT_IDS | {"output-not-tensor", "unwritten-output", "output-aliases-input"}
SANDBOX_MARKERS = ("Network is unreachable", "Read-only file system", "Permission denied", "Operation not permitted",
                   "Temporary failure in name resolution", "Name or service not known")
# The parent's clock against the reported times: a candidate's harness overhead per round (its
# round's wall time minus the times it reported) may exceed the reference's by this factor plus
# the per-call and per-round slack before the gap counts as work done outside the timed region.
# A timed call is compared with the reference's float32 output only: its strict check allows the
# candidate's own allowance (REF_ERROR_FACTOR), the reference's error, and 2x for inputs whose
# rounding is worse than the trials' (measured over 400 inputs of the matrix-chain legit: none).
TIMED_STRICT_SLACK = 2 * (REF_ERROR_FACTOR + 1)
OVERHEAD_FACTOR = 0.5
OVERHEAD_SLACK_PER_CALL_MS = {"cpu": 1.0, "cuda": 0.3}
OVERHEAD_SLACK_MS = 40.0


class Stop(Exception):
    """Ends an evaluation early with a verdict."""

    def __init__(self, verdict: str, finding: Finding | None = None, error: str = ""):
        super().__init__(verdict)
        self.verdict, self.finding, self.error = verdict, finding, error


@dataclass
class Evidence:
    """What one evaluation has found so far (findings, details for the record)."""

    findings: list[Finding] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    max_abs_error: float | None = None
    strict_ok: bool = True
    kernels: list = field(default_factory=list)
    build_s: float | None = None

    def add(self, id_: str, severity: str, message: str):
        if not any(f.id == id_ and f.message == message for f in self.findings):
            self.findings.append(Finding(id_, severity, message))

    def take(self, reply):
        for f in getattr(reply, "findings", ()):
            if f.severity in ("reject", "warn"):
                self.add(f.id, f.severity, f.message)


@dataclass(frozen=True)
class Timing:
    ref_ms: float
    cand_ms: float


def failure_stop(reply: Failure, stage: str) -> Stop:
    """The one mapping from a candidate process's failure to a verdict (`ERROR_VERDICTS`)."""
    kind, err = reply.error_kind, reply.error
    if any(s in err for s in SANDBOX_MARKERS):
        kind = "sandbox"
    if kind in ("import", "syntax") and stage != "Setup":
        kind = "runtime"
    verdict, fid = ERROR_VERDICTS.get(kind, ERROR_VERDICTS["runtime"])
    first = err.splitlines()[0][:300] if err else "failed"
    message = first if fid != "crash" else f"{stage}: {first}"
    return Stop(verdict, Finding(fid, "reject", message), error=err)


def map_params(ref: tuple, cand: tuple) -> tuple[tuple[str, str], ...]:
    """Reference parameters/buffers matched to the candidate's: by name (same shape and dtype),
    then the rest in order by shape and dtype."""
    cand_by_name = {p.name: p for p in cand}
    pairs, used = [], set()
    rest = []
    for p in ref:
        q = cand_by_name.get(p.name)
        if q is not None and q.shape == p.shape and q.dtype == p.dtype:
            pairs.append((p.name, q.name))
            used.add(q.name)
        else:
            rest.append(p)
    free = [q for q in cand if q.name not in used]
    for p in rest:
        for j, q in enumerate(free):
            if q.shape == p.shape and q.dtype == p.dtype:
                pairs.append((p.name, q.name))
                del free[j]
                break
    return tuple(pairs)


class Measurement:
    """One pass of load -> check -> time -> audit for a candidate (re-measurement runs another)."""

    def __init__(self, judge, task: Task, source: str, run: Evidence, device: str, slot):
        self.judge, self.task, self.source, self.run, self.device, self.slot = judge, task, source, run, device, slot
        self.config = judge.config
        self.seeds = Seeds.fresh(self.config)
        self.stages: dict[str, float] = run.details.setdefault("stage_s", {})
        self.ref_ok = False
        self._mark = time.monotonic()

    def stage(self, name: str):
        now = time.monotonic()
        self.stages[name] = round(self.stages.get(name, 0.0) + now - self._mark, 3)
        self._mark = now

    # --- talking to the processes --------------------------------------------------------------
    def ask_reference(self, msg, timeout: float):
        from .process import WorkerDied, WorkerTimeout

        self.ref_ok = False  # until this request is answered

        try:
            reply, wall = self.ref.request(msg, timeout)
        except WorkerTimeout as e:
            raise RuntimeError(f"the reference timed out: {e}") from None
        except (WorkerDied, ProtocolError) as e:
            raise RuntimeError(f"the reference process failed: {e}\n{getattr(e, 'log_tail', '')}") from None
        if isinstance(reply, Failure):
            raise RuntimeError(f"the reference failed in {type(msg).__name__}: {reply.error}")
        self.ref_ok = True
        return reply, wall

    def ask(self, msg, timeout: float):
        """A candidate request; every way it can go wrong ends the evaluation with a verdict."""
        from .process import WorkerDied, WorkerTimeout

        name = type(msg).__name__
        try:
            reply, wall = self.cand.request(msg, max(timeout, 1.0))
        except WorkerTimeout as e:
            raise Stop("timeout", Finding("timeout", "reject", f"{name}: {e}")) from None
        except WorkerDied as e:
            raise Stop("runtime_error", Finding("crash", "reject", f"{name}: {e}"), error=f"{e}\n{e.log_tail[-2000:]}") from None
        except ProtocolError as e:
            raise Stop("rejected", Finding("reply-malformed", "reject", f"{name}: {e}")) from None
        self.run.take(reply)
        if isinstance(reply, Failure):
            raise failure_stop(reply, name)
        return reply, wall

    def read(self, folder: str, name: str, k: int, who: str) -> CallRecord:
        try:
            return read_call(call_file(folder, name, k), folder)
        except ProtocolError as e:
            if who == "reference":
                raise RuntimeError(f"the reference's output file could not be read: {e}") from None
            raise Stop("rejected", Finding("reply-malformed", "reject", f"{name}: {e}")) from None

    def left(self) -> float:
        return max(1.0, self.deadline - time.monotonic())

    # --- the stages ---------------------------------------------------------------------------
    def run_all(self) -> Timing:
        c = self.config
        key = (self.task.source_hash, self.task.size, self.device, self.judge.threads)
        self.ref, self.ref_dir, reused = refpool.acquire(key, cache_root(c) / "live",
                                                         lambda folder: self.judge.reference_spec(folder, self.device))
        self.run.details["reference_process_reused"] = reused
        self.cand, self.work = self.slot.proc, self.slot.work
        healthy = False
        try:
            self.deadline = time.monotonic() + c.run_timeout_s
            self.judge.prestart_upcoming()
            self.run.details["sandbox_applied"] = self.cand.sandbox_description
            ref_params, cand_params = self.load()
            try:
                self.check(ref_params, cand_params)
                self.judge.wait_for_spare()
                self.stage("wait_next_process")
                times = self.time()
                self.profile()
                self.ask(Audit(full=True), self.left())
                self.stage("audit")
            finally:
                # The reference finished every request it was given (a Stop comes from the
                # candidate's side): it can serve the next evaluation.
                healthy = self.ref_ok
        finally:
            self.slot.close()
            refpool.release(key, self.ref, self.ref_dir, healthy)
        return times

    def load(self):
        c = self.config
        setup = dict(device=self.device, threads=self.judge.threads, task_source=self.task.source, size=self.task.size,
                     init_seed=self.seeds.init_seed, build_only=False, gpu_memory_fraction=c.gpu_memory_fraction)
        ref_setup, _ = self.ask_reference(Setup(candidate_source="", float64_reference=True, **setup), c.run_timeout_s * 2)
        self.stage("reference_setup")
        cand_setup, _ = self.ask(Setup(candidate_source=self.source, **setup), min(c.build_timeout_s, self.left()) + c.build_timeout_s)
        self.stage("candidate_setup")
        assert isinstance(ref_setup, SetupDone) and isinstance(cand_setup, SetupDone)
        return ref_setup.params, cand_setup.params

    def check(self, ref_params, cand_params):
        c, run = self.config, self.run
        pairs = map_params(ref_params, cand_params)
        floating = [p.name for p in ref_params if "float" in p.dtype]
        unmapped = [n for n in floating if n not in {a for a, _ in pairs}]
        if c.robustness_probe and unmapped:
            run.add("parameters-not-probed", "warn", f"{len(unmapped)} of the reference's parameters/buffers have no "
                    f"counterpart of the same name or shape in the candidate and were not perturbed: {', '.join(unmapped[:5])}")
        trials = self.seeds.trials
        reply, _ = self.ask_reference(Trials(trials, 0, tuple((a, a) for a, _ in pairs)), c.run_timeout_s * 2)
        ref = {t.name: self.read(self.ref_dir, t.name, 0, "reference") for t in trials}
        if reply.stochastic:
            run.add("stochastic-reference", "warn", "the reference draws random numbers in forward; outputs are compared under identical RNG state")
        if reply.nondeterministic:
            run.add("nondeterministic-reference", "warn", "the reference gives different outputs for the same seed; comparisons may be unreliable")
        self.stage("reference_trials")
        self.ref_aliases_inputs = any(i.aliases.startswith("input") for r in ref.values() for i in r.info)
        out_bytes = sum(t.numel() * t.element_size() for t in ref[trials[0].name].leaves if t is not None)
        self.ask(Trials(trials, max(out_bytes * 2, 64 << 20), pairs), self.left())
        self.stage("candidate_trials")
        main_ok, probe_problems, param_problems = True, [], []
        previous = None
        self.trials_strict, self.trials_ref_err = True, 0.0
        for t in trials:
            cand = self.read(self.work, t.name, 0, "candidate")
            r = ref[t.name]
            if r.inputs is not None and cand.inputs is not None and not same_values(r.inputs, cand.inputs):
                run.add("input-mutated", "reject", f"trial {t.name}: after the call the inputs differ from those the reference "
                                                   "was given (changed in place)")
            if previous is not None and cand.previous is not None and not same_values(previous, cand.previous):
                run.add("output-storage-reused", "reject", f"trial {t.name}: the previous call's output changed during this call "
                                                           "(the same memory was returned again or written later)")
            previous = cand.leaves
            cmp = compare_calls(r, cand, c.atol, c.rtol, c.strict_tol, f"trial {t.name}", self.device)
            if cmp.max_abs_error is not None:
                run.max_abs_error = max(run.max_abs_error or 0.0, cmp.max_abs_error)
            run.strict_ok = run.strict_ok and cmp.strict_ok
            if not (t.probe or t.params):
                self.trials_strict = self.trials_strict and cmp.strict_ok
                self.trials_ref_err = max(self.trials_ref_err, cmp.ref_err)
            if cmp.ok:
                continue
            values_only = all(p[0] in ("output-mismatch", "nonfinite-output") for p in cmp.problems)
            if t.probe and values_only:
                probe_problems += cmp.problems
            elif t.params and values_only:
                param_problems += cmp.problems
            else:
                main_ok = False
                for fid, msg in cmp.problems[:3]:
                    run.add(fid, "reject", msg)
        if probe_problems and main_ok:
            run.add("input-specialized", "reject",
                    "correct on the task's input distribution but not on other values of the same shapes: " + probe_problems[0][1])
        if param_problems and main_ok:
            run.add("parameter-specialized", "reject", "correct with the task's initial parameters but not after they are "
                    "re-initialised or scaled in place (as load_state_dict would): " + param_problems[0][1])
        self.stage("compare_trials")
        rejects = [f for f in run.findings if f.severity == "reject"]
        if not main_ok or any(f.id in STOP_IDS for f in rejects):
            raise Stop("incorrect" if all(f.id in INCORRECT_IDS for f in rejects) else "rejected")

    def time(self) -> Timing:
        c, run, s = self.config, self.run, self.seeds
        self.ask(Warmup(s.warmup_seed, c.warmup), self.left())
        self.ask_reference(Warmup(s.warmup_seed, c.warmup), c.run_timeout_s * 2)
        self.stage("warmup")
        kind = "cuda" if self.device.startswith("cuda") else "cpu"
        ref_times, cand_times, overhead = [], [], {"reference_ms": [], "candidate_ms": [], "calls": 0}
        bad_calls, behaviour, problems = 0, 0, []
        for rnd in s.rounds:
            self.judge.check_reference_process(self.ref, run)
            rr, r_wall = self.ask_reference(TimeRound(rnd.name, rnd.seeds, rnd.fwd_seeds, False), c.run_timeout_s * 2)
            expected = [self.read(self.ref_dir, rnd.name, k, "reference") for k in range(len(rnd.seeds))]
            self.stage("timing")
            cr, c_wall = self.ask(TimeRound(rnd.name, rnd.seeds, rnd.fwd_seeds, not self.ref_aliases_inputs), self.left())
            self.stage("timing")
            if len(cr.times_ms) != len(rnd.seeds) or not all(t > 0 for t in cr.times_ms):
                raise Stop("rejected", Finding("reply-malformed", "reject", f"round {rnd.name}: {len(cr.times_ms)} times for "
                                               f"{len(rnd.seeds)} calls, or a time that is not positive"))
            ref_times.append(list(rr.times_ms))
            cand_times.append(list(cr.times_ms))
            overhead["reference_ms"].append(round(r_wall * 1e3 - sum(rr.times_ms), 3))
            overhead["candidate_ms"].append(round(c_wall * 1e3 - sum(cr.times_ms), 3))
            overhead["calls"] += len(rnd.seeds)
            if sum(cr.times_ms) > c_wall * 1e3 * 1.02 + 1.0:
                run.add("timer-tampered", "reject", f"round {rnd.name}: the calls were reported to take {sum(cr.times_ms):.2f} ms "
                                                    f"but the whole round took {c_wall * 1e3:.2f} ms by the judge's clock")
            prev = None
            for k, exp in enumerate(expected):
                got = self.read(self.work, rnd.name, k, "candidate")
                cmp = compare_calls(exp, got, c.atol, c.rtol, c.strict_tol, f"timed call {k} of round {rnd.name}", self.device,
                                    strict_slack=TIMED_STRICT_SLACK * self.trials_ref_err)
                if not cmp.ok:
                    bad_calls += 1
                    problems += cmp.problems[:1]
                elif not cmp.strict_ok and self.trials_strict:
                    behaviour += 1
                if fingerprints_differ(exp.inputs_fp, got.inputs_fp):
                    run.add("input-mutated", "reject", f"timed call {k} of round {rnd.name}: the inputs changed during the call")
                if prev is not None and got.previous is not None and not same_values(prev, got.previous):
                    run.add("output-storage-reused", "reject", f"round {rnd.name}: call {k - 1}'s output changed during call {k} "
                                                               "(the same memory was returned again or written later)")
                prev = got.leaves
            self.ask(Audit(full=False), self.left())
            self.stage("compare_timed")
        if bad_calls:
            ids = {fid for fid, _ in problems}
            for fid in ids & {"output-aliases-input", "output-not-tensor"}:
                run.add(fid, "reject", next(m for f, m in problems if f == fid))
            run.add("timed-output-mismatch", "reject", f"{bad_calls} of {overhead['calls']} timed calls returned wrong outputs; "
                                                       f"first: {problems[0][1]}")
        if behaviour:
            run.add("timed-behaviour-differs", "reject", f"{behaviour} timed call(s) miss the {c.strict_tol:g} tolerance that every "
                                                         "correctness trial met: the program computes differently when timed")
        self.check_overhead(overhead, kind)
        flat_r = [t for r in ref_times for t in r]
        flat_c = [t for r in cand_times for t in r]
        run.details.update(
            ref_times_ms=flat_r, candidate_times_ms=flat_c, candidate_spread=_spread(flat_c), ref_spread=_spread(flat_r),
            round_medians={"reference": [statistics.median(r) for r in ref_times], "candidate": [statistics.median(r) for r in cand_times]},
            strict_tol_ok=run.strict_ok, device_used=self.device,
        )
        return Timing(statistics.median(flat_r), statistics.median(flat_c))

    def check_overhead(self, overhead: dict, kind: str):
        allowed, message = untimed_work(overhead, kind)
        self.run.details["wallclock"] = {**overhead, "allowed_ms": round(allowed, 3)}
        if message:
            self.run.add("untimed-work", "reject", message)

    def profile(self):
        if not (self.device.startswith("cuda") and self.config.profile_kernels):
            return
        reply, _ = self.ask(Profile(self.seeds.warmup_seed, 3), self.left())
        self.run.kernels = [{"name": k.name, "share": k.share, "calls": k.calls} for k in reply.kernels]
        self.judge.check_ghost_kernels(self.source, self.run)
        self.stage("profile")


def untimed_work(overhead: dict, kind: str) -> tuple[float, str | None]:
    """Work outside the timed region shows as harness overhead (a round's wall time by the
    parent's clock minus the times reported) that the reference, doing the same harness work on
    the same inputs in the same run, did not have. ``overhead`` holds each round's overhead of
    both sides (ms) and the number of calls. Hidden work is paid in every round, passing load
    in some: so the candidate's least round must exceed the reference's worst by the factor
    and slack. Returns the overhead allowed per round and a message when it was exceeded."""
    ref, cand = overhead["reference_ms"], overhead["candidate_ms"]
    per_round = overhead["calls"] / max(1, len(cand))
    allowed = max(ref) * (1 + OVERHEAD_FACTOR) + per_round * OVERHEAD_SLACK_PER_CALL_MS[kind] + OVERHEAD_SLACK_MS
    if min(cand) <= allowed:
        return allowed, None
    return allowed, (f"outside the timed calls every round of the candidate took at least {min(cand):.1f} ms of the judge's "
                     f"clock, the reference's at most {max(ref):.1f} ms (allowed {allowed:.1f} ms): work ran where it is not timed")


def _spread(xs: list[float]) -> dict:
    if len(xs) < 2:
        return {}
    q = statistics.quantiles(xs, n=4)
    med = statistics.median(xs)
    return {"iqr_over_median": (q[2] - q[0]) / med if med else None, "min": min(xs), "max": max(xs),
            "cv": statistics.pstdev(xs) / statistics.mean(xs) if statistics.mean(xs) else None}
