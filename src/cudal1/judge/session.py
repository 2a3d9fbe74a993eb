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

import dataclasses
import os
import statistics
import time
from dataclasses import dataclass, field

import torch

from ..tasks.contract import Task
from .compare import REF_ERROR_FACTOR, Comparison, compare_calls, fingerprints_differ, same_values
from .pace import pace_loaded
from .protocol import (ERROR_VERDICTS, KEEP_BYTES, SAMPLE_FROM_BYTES, SIDE_STREAM_LAG_MS, Gather, sample_indices, Audit, Failure, Profile, ProtocolError, Setup, SetupDone, TimeRound, Trials,
                       Warmup, call_file)
from . import refpool, sandbox
from .reference import Seeds, cache_root
from .stats import cv, speedup_interval, widen
from .transfer import CallRecord, read_call
from .catalogue import finding, is_known
from .verdict import Finding

INCORRECT_IDS = {"output-mismatch", "output-shape-mismatch", "output-dtype-mismatch", "output-device-mismatch", "nonfinite-output"}
# Wrong outputs in the trials end the evaluation (nothing to time); other reject findings (the
# static scan's, say) do not, so the verdict also carries what the run-time checks saw.
STOP_IDS = INCORRECT_IDS | {"output-not-tensor", "unwritten-output", "output-aliases-input"}
SANDBOX_MARKERS = ("Network is unreachable", "Read-only file system", "Permission denied", "Operation not permitted",
                   "Temporary failure in name resolution", "Name or service not known")
# A timed call is compared with the reference's float32 output only: its strict check allows the
# candidate's own allowance (REF_ERROR_FACTOR), the reference's error, and 2x for inputs whose
# rounding is worse than the trials' (measured over 400 inputs of the matrix-chain legit: none).
TIMED_STRICT_SLACK = 2 * (REF_ERROR_FACTOR + 1)
# The parent's clock against the reported times: a candidate's harness overhead per round (its
# round's wall time minus the times it reported) may exceed the reference's by this factor plus
# the per-call and per-round slack before the gap counts as work done outside the timed region.
OVERHEAD_FACTOR = 0.5
OVERHEAD_SLACK_PER_CALL_MS = {"cpu": 1.0, "cuda": 0.3}
OVERHEAD_SLACK_MS = 40.0
# On the CPU, an interval wider than this share of its middle gets extra rounds (and, if it stays
# that wide, a timing-unreliable warning).
WIDE_INTERVAL = 0.2
# The side-stream threshold is this many times the host's p90 idle device-wide wait (at least
# SIDE_STREAM_LAG_MS): an H200 host's idle wait took 5-16 us, varying from run to run.
LAG_FACTOR = 4.0


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
    timing: "Timing | None" = None  # the measurement that stands (set by the verdict stage)

    def add(self, id_: str, message: str):
        """A finding of catalogue entry ``id_`` (its severity is the entry's)."""
        if not any(f.id == id_ and f.message == message for f in self.findings):
            self.findings.append(finding(id_, message))

    def take(self, reply):
        """The findings a candidate process reported: ids it names that the catalogue lacks are a malformed reply."""
        for f in getattr(reply, "findings", ()):
            if is_known(f.id):
                self.add(f.id, f.message)
            else:
                self.add("reply-malformed", f"the candidate's process reported an unknown finding {f.id[:60]!r}")


@dataclass(frozen=True)
class Timing:
    ref_ms: float
    cand_ms: float
    ci: tuple[float, float] | None = None
    ref_cv: float | None = None
    cand_cv: float | None = None
    floor_ms: float | None = None


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
    return Stop(verdict, finding(fid, message), error=err)


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
        self.ref_out_bytes = 0  # the reference's output bytes, from its first trial
        self.keep_bytes = keep_budget(device)  # what the reference may keep of a round for Gather
        # The candidate cannot reach the judge's cache, where the reference's folder lies: its
        # files may be mapped, and both sides may run their trials at once.
        self.cache_hidden = sandbox.hides_cache(judge.sandbox_level)
        self._mark = time.monotonic()

    def stage(self, name: str):
        now = time.monotonic()
        self.stages[name] = round(self.stages.get(name, 0.0) + now - self._mark, 3)
        self._mark = now

    # --- talking to the processes --------------------------------------------------------------
    def ask_reference(self, msg, timeout: float):
        return self.reference_reply(self.tell_reference(msg), timeout)

    def tell_reference(self, msg):
        """Send the reference a request without waiting (the candidate's side runs meanwhile);
        `reference_reply` collects the answer. Until then the process is not healthy: an
        evaluation that stops half-way collects it in `run_all` before the process goes back."""
        from .process import WorkerDied

        self.ref_ok = False  # until this request is answered
        try:
            return self.ref.send(msg)
        except WorkerDied as e:
            raise RuntimeError(f"the reference process failed: {e}\n{e.log_tail}") from None

    def reference_reply(self, pending, timeout: float):
        from .process import WorkerDied, WorkerTimeout

        try:
            reply, wall = self.ref.receive(pending, timeout)
        except WorkerTimeout as e:
            raise RuntimeError(f"the reference timed out: {e}") from None
        except (WorkerDied, ProtocolError) as e:
            raise RuntimeError(f"the reference process failed: {e}\n{getattr(e, 'log_tail', '')}") from None
        if isinstance(reply, Failure):
            raise RuntimeError(f"the reference failed in {pending.name}: {reply.error}")
        self.ref_ok = True
        return reply, wall

    def collect_reference(self):
        """A request still running on the reference when the candidate's side stopped the
        evaluation: wait for its answer (bounded), so the process can serve the next one."""
        if self.ref.pending is None:
            return
        try:
            self.reference_reply(self.ref.pending, min(60.0, self.config.run_timeout_s))
        except RuntimeError:
            pass  # ref_ok stays False: the process is closed

    def ask(self, msg, timeout: float):
        """A candidate request; every way it can go wrong ends the evaluation with a verdict."""
        from .process import WorkerDied, WorkerTimeout

        name = type(msg).__name__
        try:
            reply, wall = self.cand.request(msg, max(timeout, 1.0))
        except WorkerTimeout as e:
            raise Stop("timeout", finding("timeout", f"{name}: {e}")) from None
        except WorkerDied as e:
            raise Stop("runtime_error", finding("crash", f"{name}: {e}"), error=f"{e}\n{e.log_tail[-2000:]}") from None
        except ProtocolError as e:
            raise Stop("rejected", finding("reply-malformed", f"{name}: {e}")) from None
        self.run.take(reply)
        if isinstance(reply, Failure):
            raise failure_stop(reply, name)
        return reply, wall

    def read(self, folder: str, name: str, k: int, who: str) -> CallRecord:
        try:
            return read_call(call_file(folder, name, k), folder, mmap=who == "reference" and self.cache_hidden)
        except ProtocolError as e:
            if who == "reference":
                raise RuntimeError(f"the reference's output file could not be read: {e}") from None
            raise Stop("rejected", finding("reply-malformed", f"{name}: {e}")) from None

    def left(self) -> float:
        return max(1.0, self.deadline - time.monotonic())

    # --- the stages ---------------------------------------------------------------------------
    def run_all(self) -> Timing:
        c = self.config
        key = self.key = self.judge.reference_key(self.task)
        self.ref, self.ref_dir, reused = refpool.acquire(key, cache_root(c) / "live",
                                                         lambda folder: self.judge.reference_spec(folder, self.device))
        self.run.details.setdefault("reference_process_reused", reused)  # the first measurement's
        self.cand, self.work = self.slot.proc, self.slot.work
        try:
            self.deadline = time.monotonic() + c.run_timeout_s
            self.judge.prestart_upcoming()
            self.run.details["sandbox_applied"] = self.cand.sandbox_description
            ref_params, cand_params = self.load()
            self.check(ref_params, cand_params)
            self.judge.wait_for_spare()
            self.stage("wait_next_process")
            times = self.time()
            self.judge.warm_spares()
            self.profile()
            self.ask(Audit(full=True), self.left())
            self.stage("audit")
        finally:
            self.slot.close()
            # The reference finished every request it was given (a Stop comes from the candidate's
            # side; one still running is collected): it can serve the next evaluation.
            self.collect_reference()
            refpool.release(key, self.ref, self.ref_dir, self.ref_ok)
        return times

    def load(self):
        c = self.config
        setup = dict(device=self.device, threads=self.judge.threads, task_source=self.task.source, size=self.task.size,
                     init_seed=self.seeds.init_seed, build_only=False, gpu_memory_fraction=c.gpu_memory_fraction)
        # Both processes set up at once (stage_s: the candidate's, then the rest of the reference's).
        pending = self.tell_reference(Setup(candidate_source="", float64_reference=True, **setup))
        cand_setup, _ = self.ask(Setup(candidate_source=self.source, **setup), min(c.build_timeout_s, self.left()) + c.build_timeout_s)
        self.stage("candidate_setup")
        ref_setup, _ = self.reference_reply(pending, c.run_timeout_s * 2)
        self.stage("reference_setup")
        assert isinstance(ref_setup, SetupDone) and isinstance(cand_setup, SetupDone)
        return ref_setup.params, cand_setup.params

    def check(self, ref_params, cand_params):
        c, run = self.config, self.run
        pairs = map_params(ref_params, cand_params)
        floating = [p.name for p in ref_params if "float" in p.dtype]
        unmapped = [n for n in floating if n not in {a for a, _ in pairs}]
        if c.robustness_probe and unmapped:
            run.add("parameters-not-probed", f"{len(unmapped)} of the reference's parameters/buffers have no "
                    f"counterpart of the same name or shape in the candidate and were not perturbed: {', '.join(unmapped[:5])}")
        trials = self.seeds.trials
        key = self.key
        pending = self.tell_reference(Trials(trials, 0, tuple((a, a) for a, _ in pairs)))
        # Both sides at once (stage_s: the candidate's, then the rest of the reference's) once the
        # task's output size is known, and only where the candidate cannot see the reference's
        # output files, which exist until the parent has read them.
        known = self.judge.output_bytes.get(key) if self.cache_hidden else None
        if known is not None:
            self.ask(Trials(trials, _poison_bytes(known), pairs), self.left())
            self.stage("candidate_trials")
        reply, _ = self.reference_reply(pending, c.run_timeout_s * 2)
        ref = {t.name: self.read(self.ref_dir, t.name, 0, "reference") for t in trials}
        if reply.stochastic:
            run.add("stochastic-reference", "the reference draws random numbers in forward; outputs are compared under identical RNG state")
        if reply.nondeterministic:
            run.add("nondeterministic-reference", "the reference gives different outputs for the same seed; comparisons may be unreliable")
        self.stage("reference_trials")
        self.ref_aliases_inputs = any(i.aliases.startswith("input") for r in ref.values() for i in r.info)
        out_bytes = sum(t.numel() * t.element_size() for t in ref[trials[0].name].leaves if t is not None)
        self.judge.output_bytes[key] = out_bytes
        self.ref_out_bytes = out_bytes
        if known is None or out_bytes > known:  # first of this task (or its outputs grew): poison sized from these
            self.ask(Trials(trials, _poison_bytes(out_bytes), pairs), self.left())
            self.stage("candidate_trials")
        main_ok, probe_problems, param_problems = True, [], []
        previous = None
        self.trials_strict, self.trials_ref_err = True, 0.0
        for t in trials:
            cand = self.read(self.work, t.name, 0, "candidate")
            r = ref[t.name]
            if r.inputs is not None and cand.inputs is not None and not same_values(r.inputs, cand.inputs):
                run.add("input-mutated", f"trial {t.name}: after the call the inputs differ from those the reference "
                                                   "was given (changed in place)")
            if previous is not None and cand.previous is not None and not same_values(previous, cand.previous):
                run.add("output-storage-reused", f"trial {t.name}: the previous call's output changed during this call "
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
                    run.add(fid, msg)
        if probe_problems and main_ok:
            run.add("input-specialized",
                    "correct on the task's input distribution but not on other values of the same shapes: " + probe_problems[0][1])
        if param_problems and main_ok:
            run.add("parameter-specialized", "correct with the task's initial parameters but not after they are "
                    "re-initialised or scaled in place (as load_state_dict would): " + param_problems[0][1])
        self.stage("compare_trials")
        rejects = [f for f in run.findings if f.severity == "reject"]
        if not main_ok or any(f.id in STOP_IDS for f in rejects):
            raise Stop("incorrect" if all(f.id in INCORRECT_IDS for f in rejects) else "rejected")

    def time(self) -> Timing:
        """Timed rounds, the reference and the candidate back to back in each (the order
        alternating between rounds), every call's outputs compared. A CPU machine found loaded,
        or an interval still wide, gets extra rounds; what stays unreliable is said."""
        c, run, s = self.config, self.run, self.seeds
        self.ask(Warmup(s.warmup_seed, c.warmup), self.left())
        warm, _ = self.ask_reference(Warmup(s.warmup_seed, c.warmup), c.run_timeout_s * 2)
        self.stage("warmup")
        self.floor_ms = warm.floor_ms  # the trusted process's floor; the candidate's own is not used
        # A device-wide wait after the end event that takes longer than a few idle waits on this
        # host means side streams outlasted the call (the trusted process measured the idle wait).
        self.lag_ms = max(SIDE_STREAM_LAG_MS, LAG_FACTOR * warm.sync_ms)
        self.run.details["side_stream_lag_ms"] = round(self.lag_ms, 4)
        self.kind = "cuda" if self.device.startswith("cuda") else "cpu"
        self.ref_times, self.cand_times, self.late_calls = [], [], 0
        self.overhead = {"reference_ms": [], "candidate_ms": [], "calls": 0}
        self.bad_calls, self.behaviour, self.problems = 0, 0, []
        t0 = time.monotonic()
        for i, rnd in enumerate(s.rounds):
            self.time_round(rnd, candidate_first=i % 2 == 1)
        loaded = self.kind == "cpu" and pace_loaded(run.details.get("pace_ms"), run.details.get("pace_best_ms"))
        ci = speedup_interval(self.ref_times, self.cand_times)
        if self.kind == "cpu" and (loaded or _too_wide(ci)):
            # As many rounds again, each only while the time limit leaves room for two more.
            per_round = (time.monotonic() - t0) / len(s.rounds)
            extra = 0
            for rnd in s.extra_rounds(len(s.rounds), c.rounds):
                if self.left() < 2 * per_round + 5.0:
                    break
                self.time_round(rnd, candidate_first=len(self.ref_times) % 2 == 1)
                extra += 1
            run.details["extra_rounds"] = extra
            ci = speedup_interval(self.ref_times, self.cand_times)
        self.report_calls()
        self.check_overhead(self.overhead, self.kind)
        flat_r = [t for r in self.ref_times for t in r]
        flat_c = [t for r in self.cand_times for t in r]
        raw_ci, ci = ci, widen(ci, self.kind)
        timing = Timing(statistics.median(flat_r), statistics.median(flat_c), ci, cv(flat_r), cv(flat_c), self.floor_ms)
        if loaded or (self.kind == "cpu" and _too_wide(raw_ci)):
            why = (f"the machine was busy (its pace {run.details['pace_ms']:.2f} ms against {run.details['pace_best_ms']:.2f} ms "
                   "when idle)" if loaded else "the call times vary too much")
            run.add("timing-unreliable", f"{why}: {len(self.ref_times)} rounds give the speedup an interval of "
                    f"{_ci_text(ci)}; re-run on an idle machine for a figure to rely on")
        run.details.update(
            ref_times_ms=flat_r, candidate_times_ms=flat_c, candidate_spread=_spread(flat_c), ref_spread=_spread(flat_r),
            round_medians={"reference": [statistics.median(r) for r in self.ref_times],
                           "candidate": [statistics.median(r) for r in self.cand_times]},
            strict_tol_ok=run.strict_ok, device_used=self.device, floor_ms=self.floor_ms, late_calls=self.late_calls,
        )
        return timing

    def time_round(self, rnd, candidate_first: bool):
        """One round: both sides time the same inputs; then every candidate call is compared."""
        c, run = self.config, self.run
        # Large outputs the candidate writes on samples: the reference keeps its own on its device
        # and writes them once the candidate's positions are known (Gather), so both sides do
        # about the same untimed work between calls and only the compared values are copied.
        keep = bool(c.timed_sample) and SAMPLE_FROM_BYTES < self.ref_out_bytes <= self.keep_bytes // max(1, len(rnd.seeds))
        sides = [lambda r: self.reference_round(r, keep), self.candidate_round]
        got = {}
        for side in (sides[::-1] if candidate_first else sides):
            got.update(side(rnd))
        rr, r_wall, cr, c_wall = got["ref"], got["ref_wall"], got["cand"], got["cand_wall"]
        if len(cr.times_ms) != len(rnd.seeds) or not all(t > 0 for t in cr.times_ms):
            raise Stop("rejected", finding("reply-malformed", f"round {rnd.name}: {len(cr.times_ms)} times for "
                                           f"{len(rnd.seeds)} calls, or a time that is not positive"))
        self.ref_times.append(list(rr.times_ms))
        self.cand_times.append(list(cr.times_ms))
        self.late_calls += cr.late_calls
        self.overhead["reference_ms"].append(round(r_wall * 1e3 - sum(rr.times_ms), 3))
        self.overhead["candidate_ms"].append(round(c_wall * 1e3 - sum(cr.times_ms), 3))
        self.overhead["calls"] += len(rnd.seeds)
        if sum(cr.times_ms) > c_wall * 1e3 * 1.02 + 1.0:
            run.add("timer-tampered", f"round {rnd.name}: the calls were reported to take {sum(cr.times_ms):.2f} ms "
                                                f"but the whole round took {c_wall * 1e3:.2f} ms by the judge's clock")
        outs = [self.read(self.work, rnd.name, k, "candidate") for k in range(len(rnd.seeds))]
        expected = got["expected"]
        if keep:
            seeds = tuple(-1 if o.sample_seed is None else o.sample_seed for o in outs)
            _, g_wall = self.ask_reference(Gather(rnd.name, seeds, c.timed_sample), c.run_timeout_s * 2)
            # The candidate wrote these calls (whole, or at these positions) inside its round, the
            # reference only now: its round's untimed work counts the writing too, or a legit
            # candidate's writes read as work done where it is not timed.
            self.overhead["reference_ms"][-1] = round(self.overhead["reference_ms"][-1] + g_wall * 1e3, 3)
            expected = [self.read(self.ref_dir, rnd.name, k, "reference") for k in range(len(rnd.seeds))]
        prev = None
        for k, (exp, out) in enumerate(zip(expected, outs)):
            label = f"timed call {k} of round {rnd.name}"
            sampled = self.sampled_expected(exp, out, label) if out.sample_seed is not None else exp
            if sampled is None:
                cmp = Comparison()
                cmp.fail("output-shape-mismatch", f"{label}: returned shapes {[list(x) if x else x for x in out.shapes]}, "
                                                  f"expected {[list(x) if x else x for x in exp.full_shapes()]}")
            else:
                cmp = compare_calls(sampled, out, c.atol, c.rtol, c.strict_tol, label, self.device,
                                    strict_slack=TIMED_STRICT_SLACK * self.trials_ref_err)
            if not cmp.ok:
                self.bad_calls += 1
                self.problems += cmp.problems[:1]
            elif not cmp.strict_ok and self.trials_strict:
                self.behaviour += 1
            if fingerprints_differ(exp.inputs_fp, out.inputs_fp):
                run.add("input-mutated", f"timed call {k} of round {rnd.name}: the inputs changed during the call")
            if prev is not None and out.previous is not None and not same_values(prev, out.previous):
                run.add("output-storage-reused", f"round {rnd.name}: call {k - 1}'s output changed during call {k} "
                                                           "(the same memory was returned again or written later)")
            prev = out.leaves
        self.ask(Audit(full=False), self.left())
        self.stage("compare_timed")

    def sampled_expected(self, exp: CallRecord, out: CallRecord, label: str) -> CallRecord | None:
        """The reference's record cut to the positions a sampled candidate call was checked at;
        None when the candidate's outputs have other shapes. A sample the judge did not ask for
        ends the evaluation."""
        if not self.config.timed_sample or out.sample_n != self.config.timed_sample:
            raise Stop("rejected", finding("reply-malformed", f"{label}: a sample of {out.sample_n} values; the judge "
                                           f"asked for {self.config.timed_sample or 'whole outputs'}"))
        if out.shapes != exp.full_shapes():
            return None
        if exp.sample_seed is not None:  # gathered by the reference at the candidate's positions
            same = exp.sample_seed == out.sample_seed and exp.sample_n == out.sample_n
            return dataclasses.replace(exp, out64=None) if same else None
        picked = tuple(None if t is None else torch.take(t, sample_indices(t.numel(), out.sample_seed + i, out.sample_n,
                                                                           torch.randint, torch.Generator))
                       for i, t in enumerate(exp.leaves))
        return dataclasses.replace(exp, leaves=picked, out64=None)

    def reference_round(self, rnd, keep: bool) -> dict:
        self.judge.check_reference_process(self.ref, self.run)
        rr, wall = self.ask_reference(TimeRound(rnd.name, rnd.seeds, rnd.fwd_seeds, False, self.lag_ms, keep=keep),
                                      self.config.run_timeout_s * 2)
        expected = [] if keep else [self.read(self.ref_dir, rnd.name, k, "reference") for k in range(len(rnd.seeds))]
        self.stage("timing")
        return {"ref": rr, "ref_wall": wall, "expected": expected}

    def candidate_round(self, rnd) -> dict:
        cr, wall = self.ask(TimeRound(rnd.name, rnd.seeds, rnd.fwd_seeds, not self.ref_aliases_inputs, self.lag_ms,
                                      sample=self.config.timed_sample), self.left())
        self.stage("timing")
        return {"cand": cr, "cand_wall": wall}

    def report_calls(self):
        run = self.run
        if self.bad_calls:
            ids = {fid for fid, _ in self.problems}
            for fid in ids & {"output-aliases-input", "output-not-tensor"}:
                run.add(fid, next(m for f, m in self.problems if f == fid))
            run.add("timed-output-mismatch", f"{self.bad_calls} of {self.overhead['calls']} timed calls returned wrong "
                                                       f"outputs; first: {self.problems[0][1]}")
        if self.behaviour:
            run.add("timed-behaviour-differs", f"{self.behaviour} timed call(s) miss the {self.config.strict_tol:g} "
                                                         "tolerance that every correctness trial met: the program computes "
                                                         "differently when timed")

    def check_overhead(self, overhead: dict, kind: str):
        allowed, message = untimed_work(overhead, kind)
        self.run.details["wallclock"] = {**overhead, "allowed_ms": round(allowed, 3)}
        if message:
            self.run.add("untimed-work", message)

    def profile(self):
        if not self.judge.profiles(self.source):
            return
        reply, _ = self.ask(Profile(self.seeds.warmup_seed, 3), self.left())
        self.run.kernels = [{"name": k.name, "share": k.share, "calls": k.calls} for k in reply.kernels]
        self.judge.check_ghost_kernels(self.source, self.run)
        self.stage("profile")


def keep_budget(device: str) -> int:
    """Bytes of a round's outputs the reference may keep for `Gather`: KEEP_BYTES, at most a tenth
    of the device's memory (of the host's on the CPU)."""
    try:
        if device.startswith("cuda"):
            total = torch.cuda.get_device_properties(torch.device(device)).total_memory
        else:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (RuntimeError, ValueError, OSError, AssertionError):
        return 0
    return min(KEEP_BYTES, total // 10)


def _poison_bytes(out_bytes: int) -> int:
    """How much allocator memory the candidate's process poisons before its trials: twice the
    reference's output, at least 64 MB."""
    return max(out_bytes * 2, 64 << 20)


def untimed_work(overhead: dict, kind: str) -> tuple[float, str | None]:
    """Work outside the timed region shows as harness overhead (a round's wall time by the
    parent's clock minus the times reported) that the reference, doing the same harness work on
    the same inputs in the same run, did not have. ``overhead`` holds each round's overhead of
    both sides (ms) and the number of calls. Hidden work is paid in every round, passing load
    in some: so the candidate's least round must exceed the reference's upper median (its worst
    with two rounds; with more, one spike of load in a reference round does not lift the bar)
    by the factor and slack. Returns the overhead allowed per round and a message when it was
    exceeded."""
    ref, cand = overhead["reference_ms"], overhead["candidate_ms"]
    per_round = overhead["calls"] / max(1, len(cand))
    bar = statistics.median_high(ref)
    allowed = bar * (1 + OVERHEAD_FACTOR) + per_round * OVERHEAD_SLACK_PER_CALL_MS[kind] + OVERHEAD_SLACK_MS
    if min(cand) <= allowed:
        return allowed, None
    return allowed, (f"outside the timed calls every round of the candidate took at least {min(cand):.1f} ms of the judge's "
                     f"clock, the reference's typically {bar:.1f} ms (upper median; allowed {allowed:.1f} ms): work ran where it "
                     "is not timed")


def _too_wide(ci: tuple[float, float] | None) -> bool:
    """An interval wider than WIDE_INTERVAL of its own middle (or none at all)."""
    return ci is None or (ci[1] - ci[0]) > WIDE_INTERVAL * (ci[0] + ci[1]) / 2


def _ci_text(ci) -> str:
    return f"{ci[0]:.2f}x-{ci[1]:.2f}x" if ci else "none"


def _spread(xs: list[float]) -> dict:
    if len(xs) < 2:
        return {}
    q = statistics.quantiles(xs, n=4)
    med = statistics.median(xs)
    return {"iqr_over_median": (q[2] - q[0]) / med if med else None, "min": min(xs), "max": max(xs), "cv": cv(xs)}
