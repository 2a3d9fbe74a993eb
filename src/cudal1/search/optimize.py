"""The LLM-free optimize loop: propose → judge → store, within a budget; write the best.

``optimize(task, policy, options)`` asks the policy for candidates (best first, as many as the
budget has left), stores them, and judges the batch: a source already judged under the same
task, size, device and judge settings reuses its stored verdict; the others go to ONE
`Judge.evaluate_many` call, which builds them all on a pool of CPU workers and then evaluates
them back to back on the device; each verdict is stored as it arrives. The policy then sees
the batch's verdicts and may propose again. It writes to ``options.out_dir``:

* ``best_<task>.py``: the fastest candidate the judge ACCEPTED that is faster than the
  reference beyond the timing noise (`faster_than_reference`: the speedup's 95% interval lies
  above 1.0), at full precision, with a header giving its measured verdict (never a candidate
  that was not accepted; nothing when no accepted candidate is significantly faster);
* ``best_<task>_lower_precision.py`` likewise among lower-precision candidates (only with
  ``allow_lower_precision``), reported separately;
* ``report.json``: every candidate tried with strategy, verdict, findings, speedup and interval.

`OptimizeResult` is also what the LLM search (``run_llm_search``) returns.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..judge import JudgeConfig
from ..judge.verdict import NOT_SIGNIFICANT, faster_than_reference
from ..policies.base import Context, Policy, Proposal
from ..policies.rules import cost
from ..store.records import Attempt, Candidate
from ..tasks.contract import Task, source_hash
from .judging import Recording, judge_and_store
from .options import SearchOptions

log = logging.getLogger(__name__)

RUN_KIND = "optimize"
ProgressFn = Callable[[str], None]
__all__ = ["NOT_SIGNIFICANT", "OptimizeResult", "faster_than_reference", "optimize", "tried_row", "write_outputs"]


def tried_row(index: int, t: Attempt) -> dict:
    """One candidate's row in report.json."""
    v = t.verdict
    return {
        "index": index, "strategy": t.strategy, "components": list(t.components), "policy": t.policy,
        "lower_precision": t.is_lower_precision, "verdict": v.verdict, "speedup": v.speedup,
        "speedup_ci": list(v.speedup_ci) if v.speedup_ci else None, "faster_than_reference": t.faster,
        "ref_ms": v.ref_ms, "candidate_ms": v.candidate_ms, "max_abs_error": v.max_abs_error,
        "findings": [f.to_json() for f in v.findings], "candidate_id": t.candidate_id,
        "source_hash": source_hash(t.source), "notes": t.notes, "reused": t.reused,
        "build_s": v.build_s, "eval_s": v.eval_s, "error": (v.details.error or "")[:2000],
    }


@dataclass
class OptimizeResult:
    """What one optimize (or LLM search) run found for one task."""

    task: Task
    device: str
    device_name: str
    policy: str
    tried: list[Attempt] = field(default_factory=list)
    run_id: int | None = None
    best_path: str | None = None
    best_lower_precision_path: str | None = None
    report_path: str | None = None
    wall_s: float = 0.0
    stop_reason: str = ""  # "budget", "no-more-proposals", "wall-time" (LLM search: also "token-budget", ...)
    budget: int | None = None  # most candidates the run could judge (None: the LLM search's rounds)
    skipped: dict[str, float] = field(default_factory=dict)  # plan -> the most the cost model allowed it
    extra: dict = field(default_factory=dict)

    def _best(self, lower: bool) -> Attempt | None:
        pool = [t for t in self.tried if t.verdict.accepted and t.speedup and t.is_lower_precision == lower]
        faster = [t for t in pool if t.faster]
        # A significantly faster candidate wins over one with a higher but uncertain point speedup.
        return max(faster or pool, key=lambda t: t.speedup, default=None)

    @property
    def best(self) -> Attempt | None:
        """The fastest full-precision candidate that is faster than the reference beyond the
        noise; when there is none, the fastest accepted one (slower than the reference, or not
        significantly faster: see ``beats_reference``)."""
        return self._best(False)

    @property
    def best_lower_precision(self) -> Attempt | None:
        return self._best(True)

    @property
    def beats_reference(self) -> bool:
        return self.best is not None and self.best.faster

    @property
    def speedup(self) -> float:
        """The task's result: the best candidate's speedup when it beats the reference, else 1.0
        (keep the reference)."""
        return self.best.speedup if self.beats_reference else 1.0

    def message(self) -> str:
        """One plain sentence on the outcome, then one on why the search stopped (`stop_text`)."""
        why = self.stop_text()
        return self._outcome() + (f" {why}" if why else "")

    def stop_text(self) -> str:
        """Why the search stopped, in words: above all when it judged fewer candidates than the
        budget allowed, so that an unspent budget is not a mystery. '' when there is nothing to add."""
        n, budget = len(self.tried), self.budget
        if self.stop_reason == "no-more-proposals" and budget is not None and n < budget:
            what = "applicable rewrite" if self.policy == "rules" else "candidate"
            had = f"{n} {what}{'s' if n != 1 else ''}" if n else f"no {what}"
            pruned = ""
            if self.skipped:
                plans = ", ".join(f"{p} (at most {x:.2f}x)" for p, x in list(self.skipped.items())[:4])
                pruned = (f" {len(self.skipped)} more were not judged: the reference already runs near the roofline of "
                          f"its work, so they could not beat it ({plans}{', ...' if len(self.skipped) > 4 else ''}).")
            return f"The {self.policy} policy had {had} for this task; budget {budget} not used up.{pruned}"
        if self.stop_reason == "wall-time":
            of = f" of budget {budget}" if budget is not None else ""
            return f"Stopped when the wall time (--wall-time) ran out, after {n}{of} candidate{'s' if n != 1 else ''}."
        if self.stop_reason == "token-budget":
            return "Stopped when the token budget (--token-budget) was spent."
        if self.stop_reason == "llm-unavailable":
            return "Stopped because the LLM returned no usable answer in a round."
        return ""

    def _outcome(self) -> str:
        if not self.tried:
            return f"No candidate applies to this task on {self.device_name}: keep the reference."
        lp = self.best_lower_precision
        lp_txt = ""
        if lp is not None and lp.speedup > 1.0:
            lp_txt = (f" A lower-precision candidate ({lp.strategy}) reached {lp.verdict.speedup_text()}"
                      + ("" if lp.faster else ", not significantly faster") + " (reported separately).")
        b = self.best
        if self.beats_reference:
            return (f"Best accepted candidate: {b.strategy} at {b.verdict.speedup_text()} over the reference "
                    f"({b.verdict.ref_ms:.4g} ms -> {b.verdict.candidate_ms:.4g} ms) on {self.device_name}.{lp_txt}")
        if b is not None and b.speedup > 1.0:
            return (f"Nothing beat the reference significantly: the best accepted candidate, {b.strategy} at "
                    f"{b.verdict.speedup_text()}, is not significantly faster (its 95% interval reaches 1.0); "
                    f"keep the reference.{lp_txt}")
        n_acc = sum(t.verdict.accepted for t in self.tried)
        if n_acc:
            best_txt = f", the best full-precision one at {b.verdict.speedup_text()} ({b.strategy})" if b else ""
            return (f"Nothing beat the reference: {n_acc} of {len(self.tried)} candidates were accepted{best_txt}; "
                    f"keep the reference.{lp_txt}")
        return f"Nothing beat the reference: none of the {len(self.tried)} candidates was accepted; keep the reference."

    def to_json(self) -> dict:
        def summary(t: Attempt | None, path: str | None) -> dict | None:
            if t is None:
                return None
            ci = t.verdict.speedup_ci
            return {"strategy": t.strategy, "speedup": t.speedup, "speedup_ci": list(ci) if ci else None,
                    "faster_than_reference": t.faster, "candidate_id": t.candidate_id, "path": path}

        return {
            "task": self.task.id, "size": self.task.size, "device": self.device, "device_name": self.device_name,
            "policy": self.policy, "run_id": self.run_id, "wall_s": round(self.wall_s, 2),
            "stop_reason": self.stop_reason, "budget": self.budget, "beats_reference": self.beats_reference,
            "skipped_by_cost_model": {p: round(x, 3) for p, x in self.skipped.items()},
            "speedup": self.speedup,
            "message": self.message(),
            "best": summary(self.best, self.best_path),
            "best_lower_precision": summary(self.best_lower_precision, self.best_lower_precision_path),
            "tried": [tried_row(i, t) for i, t in enumerate(self.tried, 1)],
            **({"extra": self.extra} if self.extra else {}),
        }


def best_file_name(task: Task, suffix: str = "") -> str:
    return f"best_{task.id.replace('/', '_')}{suffix}.py"


def verdict_header(task: Task, t: Attempt, device_name: str, db: str | None = None) -> str:
    """The comment block at the top of a written best candidate: its measured verdict."""
    v = t.verdict
    findings = ", ".join(f"{f.id} ({f.severity})" for f in v.findings) or "none"
    interval = " (95% interval)" if v.speedup_ci else " (no interval measured)"
    lines = [
        f"# cudal1: ACCEPTED by the judge for {task.id} (size {task.size}) on {device_name}, torch {v.torch}",
        f"# speedup {v.speedup_text()}{interval} over the reference: {v.ref_ms:.4g} ms -> {v.candidate_ms:.4g} ms"
        + (f", max abs error {v.max_abs_error:.3g}" if v.max_abs_error is not None else ""),
        f"# strategy: {t.strategy} (policy {t.policy})" + ("; LOWER PRECISION" if t.is_lower_precision else ""),
        f"# findings: {findings}",
    ]
    if t.candidate_id is not None:
        lines.append(f"# candidate id {t.candidate_id}" + (f" in {db}" if db else ""))
    return "\n".join(lines) + "\n"


def write_outputs(result: OptimizeResult, out_dir: str | Path, db: str | None = None) -> OptimizeResult:
    """Write the best accepted candidates (only when significantly faster than the reference,
    `faster_than_reference`) and report.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for t, suffix, attr in ((result.best, "", "best_path"),
                            (result.best_lower_precision, "_lower_precision", "best_lower_precision_path")):
        if t is not None and t.faster:
            path = out / best_file_name(result.task, suffix)
            path.write_text(verdict_header(result.task, t, result.device_name, db) + t.source, encoding="utf-8")
            setattr(result, attr, str(path))
    report = out / "report.json"
    result.report_path = str(report)
    report.write_text(json.dumps(result.to_json(), indent=2, default=str), encoding="utf-8")
    return result


def _candidate_meta(policy: Policy, task: Task) -> dict:
    traced = getattr(policy, "traced", None)
    if callable(traced):
        try:
            return {"signature": traced(task).signature}
        except Exception as e:  # noqa: BLE001 - the signature only feeds strategy ordering
            log.info("no operator signature for %s: %s", task.id, e)
    return {}


class _Announcer:
    """Progress lines for one batch: ``[3/16] fuse: accepted 1.42x [1.30-1.55]``."""

    def __init__(self, proposals: list[Proposal], say: ProgressFn, first: int, budget: int):
        self.proposals, self.say, self.first, self.budget = proposals, say, first, budget
        self.todo: list[int] | None = None  # set when judging starts

    def tag(self, i: int) -> str:
        return f"[{self.first + i}/{self.budget}]"

    def on_start(self, todo: list[int]) -> None:
        self.todo = todo
        if todo:
            workers = os.cpu_count() or 1
            self.say(f"judging {len(todo)} candidate{'s' if len(todo) > 1 else ''}: builds on {workers} CPU workers, "
                     "evaluations one at a time")
            self.say(f"{self.tag(todo[0])} judging {self.proposals[todo[0]].strategy}")

    def on_attempt(self, i: int, t: Attempt) -> None:
        if self.todo is not None and i not in self.todo:
            return  # a second copy of a source judged just now
        v = t.verdict
        self.say(f"{self.tag(i)} {t.strategy}: {v.verdict} {v.speedup_text()}".rstrip()
                 + (" (stored verdict reused)" if self.todo is None else ""))
        if self.todo is not None:
            k = self.todo.index(i)
            if k + 1 < len(self.todo):
                self.say(f"{self.tag(self.todo[k + 1])} judging {self.proposals[self.todo[k + 1]].strategy}")


def _device_peaks(device: str, say: ProgressFn):
    """The device's cached peaks, on CUDA measured once (a few seconds) when none are cached;
    None when there are none (the cost model then skips nothing). On a CPU only cached peaks
    count (`cudal1 roofline` caches them): a shared host's peaks vary too much to
    measure in passing."""
    from ..analysis.roofline import get_peaks, load_cached_peaks

    peaks = load_cached_peaks(device)
    if peaks is None and device.startswith("cuda"):
        say(f"measuring the peaks of {device} once (cached for the cost model and %roof columns)")
        try:
            peaks = get_peaks(device, quick=True)
        except Exception as e:  # noqa: BLE001 - the search runs without the cost model
            log.warning("peaks of %s not measured: %s", device, e)
    return peaks


def optimize(task: Task, policy: Policy, options: SearchOptions, store=None, judge_config: JudgeConfig | None = None,
             progress: ProgressFn | None = None, judge=None) -> OptimizeResult:
    """Run ``policy`` on ``task`` for at most ``options.budget`` judged candidates; see the module doc.

    ``options.wall_time_s`` is checked before each batch and after each verdict: once it is
    spent no batch starts and the current batch's remaining evaluations are skipped (their
    candidates stay in the store without a verdict). ``judge`` (default a `Judge` for
    ``options.device``) needs ``device``, ``device_name`` and ``evaluate_many``.
    """
    import torch

    from ..judge import Judge
    from ..store import Store, config_key

    say = progress or (lambda msg: None)
    if options.size and task.size != options.size:
        task = task.with_size(options.size)
    config = judge_config or JudgeConfig(allow_lower_precision=options.allow_lower_precision)
    judge = judge or Judge(options.device, config)
    store = store if store is not None else Store(options.db)
    key = config_key(config)
    if hasattr(policy, "stats"):
        from ..policies.rules.ordering import StrategyStats

        policy.stats = StrategyStats.from_store(store, device=judge.device_name)
    store.add_task(task)
    earlier = [a.verdict for a in store.history(task.id, device=judge.device_name, size=task.size)]
    if hasattr(policy, "peaks"):
        policy.peaks = _device_peaks(judge.device, say)
    run_id = store.start_run(RUN_KIND, {"task": task.id, "size": task.size, "policy": policy.name,
                                         "budget": options.budget, "device": judge.device,
                                         "allow_lower_precision": options.allow_lower_precision},
                             judge.device_name, torch.__version__)
    result = OptimizeResult(task=task, device=judge.device, device_name=judge.device_name, policy=policy.name,
                            run_id=run_id, budget=options.budget)
    recording = Recording(store, judge.device_name, key, run_id)
    t0 = time.monotonic()
    deadline = None if options.wall_time_s is None else t0 + options.wall_time_s

    def out_of_time() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    status = "interrupted"
    attempts: list[Attempt] = []
    stop = None
    try:
        while stop is None:
            left = options.budget - len(result.tried)
            if left <= 0:
                stop = "budget"
                break
            if out_of_time():
                stop = "wall-time"
                break
            say(f"proposing candidates for {task.id}")
            context = Context(device=judge.device, history=list(attempts),
                              allow_lower_precision=options.allow_lower_precision, budget=left,
                              reference_ms=cost.reference_ms(earlier + [a.verdict for a in attempts]))
            proposals = policy.propose(task, context)[:left]
            for skip in getattr(policy, "skipped", []):
                if skip.plan not in result.skipped:
                    result.skipped[skip.plan] = skip.at_most
                    say(f"not judged (cost model): {skip.reason()}")
            if not proposals:
                stop = "no-more-proposals"
                break
            announce = _Announcer(proposals, say, first=len(result.tried) + 1, budget=options.budget)
            meta = _candidate_meta(policy, task)
            tried = judge_and_store(
                [(task, Candidate.from_proposal(task.id, p, policy.name, meta)) for p in proposals],
                lambda jobs, on_result: judge.evaluate_many(jobs, build_workers=os.cpu_count() or 1, on_result=on_result),
                recording, on_start=announce.on_start, on_attempt=announce.on_attempt, stop=out_of_time)
            judged = [t for t in tried if t is not None]
            result.tried.extend(judged)
            attempts.extend(judged)
            if len(judged) < len(tried):
                say(f"wall time spent: {len(tried) - len(judged)} candidates left unjudged")
                stop = "wall-time"
        result.stop_reason = stop
        status = "done"
    finally:
        result.wall_s = time.monotonic() - t0
        store.finish_run(run_id, status)
    return write_outputs(result, options.out_dir, db=str(getattr(store, "path", "") or ""))
