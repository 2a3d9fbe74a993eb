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
from typing import TYPE_CHECKING

from ..judge import JudgeConfig, Verdict
from ..policies.base import Attempt, Context, Policy, Proposal
from ..tasks.contract import Task, source_hash
from .options import SearchOptions

if TYPE_CHECKING:
    from ..judge import Judge
    from ..store import Store

log = logging.getLogger(__name__)

RUN_KIND = "optimize"
NOT_SIGNIFICANT = "speedup-not-significant"  # the judge's finding: the speedup's interval contains 1.0
ProgressFn = Callable[[str], None]


def faster_than_reference(verdict: Verdict) -> bool:
    """Whether the judge showed the candidate faster than the reference beyond the timing noise.

    That is `Verdict.significant`: accepted, and the whole 95% interval of the speedup above
    1.0 (a candidate at 1.04x [0.97-1.11] may be no faster at all, and writing it as the best
    would hand the user a rewrite for nothing). A verdict without an interval (``speedup_ci``
    None: judged before the judge measured intervals, or read back from a store that does not
    keep them) falls back to its point speedup above 1.0, the rule it was judged under; refusing
    it would discard a measured result that only a full re-evaluation could replace. Its
    ``speedup-not-significant`` finding, which the judge adds when the interval contains 1.0 and
    which the store keeps, still counts.
    """
    if verdict.speedup_ci is None:
        return (verdict.accepted and verdict.speedup is not None and verdict.speedup > 1.0
                and NOT_SIGNIFICANT not in verdict.finding_ids())
    return verdict.significant


@dataclass(frozen=True)
class TriedCandidate:
    """One candidate a search judged (or found judged in the store), with its verdict."""

    source: str
    strategy: str
    verdict: Verdict
    candidate_id: int | None = None
    components: tuple[str, ...] = ()
    lower_precision: bool = False
    notes: str = ""
    policy: str = "rules"
    reused: bool = False  # the verdict came from the store (same source, task, device, settings)

    @property
    def speedup(self) -> float | None:
        return self.verdict.speedup if self.verdict.accepted else None

    @property
    def faster(self) -> bool:
        """Faster than the reference beyond the noise (`faster_than_reference`)."""
        return faster_than_reference(self.verdict)

    @property
    def is_lower_precision(self) -> bool:
        return self.lower_precision or bool(self.verdict.details.get("lower_precision")) or any(
            f.id in ("lower-precision", "lower-precision-flags") for f in self.verdict.findings)

    def to_json(self, index: int) -> dict:
        v = self.verdict
        return {
            "index": index, "strategy": self.strategy, "components": list(self.components), "policy": self.policy,
            "lower_precision": self.is_lower_precision, "verdict": v.verdict, "speedup": v.speedup,
            "speedup_ci": list(v.speedup_ci) if v.speedup_ci else None, "faster_than_reference": self.faster,
            "ref_ms": v.ref_ms, "candidate_ms": v.candidate_ms, "max_abs_error": v.max_abs_error,
            "findings": [f.to_json() for f in v.findings], "candidate_id": self.candidate_id,
            "source_hash": source_hash(self.source), "notes": self.notes, "reused": self.reused,
            "build_s": v.build_s, "eval_s": v.eval_s, "error": (v.details or {}).get("error", "")[:2000],
        }


@dataclass
class OptimizeResult:
    """What one optimize (or LLM search) run found for one task."""

    task: Task
    device: str
    device_name: str
    policy: str
    tried: list[TriedCandidate] = field(default_factory=list)
    run_id: int | None = None
    best_path: str | None = None
    best_lower_precision_path: str | None = None
    report_path: str | None = None
    wall_s: float = 0.0
    stop_reason: str = ""  # "budget", "no-more-proposals", "wall-time" (LLM search: also "token-budget", ...)
    budget: int | None = None  # most candidates the run could judge (None: the LLM search's rounds)
    extra: dict = field(default_factory=dict)

    def _best(self, lower: bool) -> TriedCandidate | None:
        pool = [t for t in self.tried if t.verdict.accepted and t.speedup and t.is_lower_precision == lower]
        faster = [t for t in pool if t.faster]
        # A significantly faster candidate wins over one with a higher but uncertain point speedup.
        return max(faster or pool, key=lambda t: t.speedup, default=None)

    @property
    def best(self) -> TriedCandidate | None:
        """The fastest full-precision candidate that is faster than the reference beyond the
        noise; when there is none, the fastest accepted one (slower than the reference, or not
        significantly faster: see ``beats_reference``)."""
        return self._best(False)

    @property
    def best_lower_precision(self) -> TriedCandidate | None:
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
            return f"The {self.policy} policy had {had} for this task; budget {budget} not used up."
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
        def summary(t: TriedCandidate | None, path: str | None) -> dict | None:
            if t is None:
                return None
            ci = t.verdict.speedup_ci
            return {"strategy": t.strategy, "speedup": t.speedup, "speedup_ci": list(ci) if ci else None,
                    "faster_than_reference": t.faster, "candidate_id": t.candidate_id, "path": path}

        return {
            "task": self.task.id, "size": self.task.size, "device": self.device, "device_name": self.device_name,
            "policy": self.policy, "run_id": self.run_id, "wall_s": round(self.wall_s, 2),
            "stop_reason": self.stop_reason, "budget": self.budget, "beats_reference": self.beats_reference,
            "speedup": self.speedup,
            "message": self.message(),
            "best": summary(self.best, self.best_path),
            "best_lower_precision": summary(self.best_lower_precision, self.best_lower_precision_path),
            "tried": [t.to_json(i) for i, t in enumerate(self.tried, 1)],
            **({"extra": self.extra} if self.extra else {}),
        }


def best_file_name(task: Task, suffix: str = "") -> str:
    return f"best_{task.id.replace('/', '_')}{suffix}.py"


def verdict_header(task: Task, t: TriedCandidate, device_name: str, db: str | None = None) -> str:
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


def _candidate_meta(policy: Policy, task: Task, p: Proposal) -> dict:
    meta = {"components": list(p.components), "lower_precision": p.lower_precision}
    traced = getattr(policy, "traced", None)
    if callable(traced):
        try:
            meta["signature"] = traced(task).signature
        except Exception as e:  # noqa: BLE001 - the signature only feeds strategy ordering
            log.info("no operator signature for %s: %s", task.id, e)
    return meta


def _store_candidate(task: Task, policy: Policy, p: Proposal, store) -> int:
    from ..store import Candidate

    return store.find_candidate(task.id, source_hash(p.source), policy.name) or store.add_candidate(Candidate(
        task_id=task.id, source=p.source, policy=policy.name, strategy=p.strategy, parents=p.parents,
        prompt=p.prompt, response=p.response, template_version=p.template_version, notes=p.notes,
        meta=_candidate_meta(policy, task, p)))


class _OutOfTime(Exception):
    """Raised from a batch's result callback once the wall time is spent: the judge's remaining
    evaluations are skipped (builds already under way finish first; they stay cached on disk)."""


@dataclass
class _Batch:
    """One batch of proposals being judged: where each result goes and how to announce it."""

    task: Task
    policy: Policy
    proposals: list[Proposal]
    judge: Judge
    store: Store
    run_id: int
    key: str
    say: ProgressFn
    first: int  # the number of the batch's first candidate in the run (1-based)
    budget: int
    deadline: float | None

    def tag(self, i: int) -> str:
        return f"[{self.first + i}/{self.budget}]"

    def tried(self, i: int, verdict: Verdict, cid: int, reused: bool) -> TriedCandidate:
        p = self.proposals[i]
        return TriedCandidate(source=p.source, strategy=p.strategy, verdict=verdict, candidate_id=cid,
                              components=p.components, lower_precision=p.lower_precision, notes=p.notes,
                              policy=self.policy.name, reused=reused)

    def run(self) -> tuple[list[TriedCandidate], bool]:
        """Store the proposals, reuse stored verdicts, judge the rest with one `evaluate_many`,
        storing each verdict as it arrives. Returns the tried candidates in proposal order (those
        judged before the wall time ran out) and whether it ran out."""
        task, store, judge = self.task, self.store, self.judge
        ids = [_store_candidate(task, self.policy, p, store) for p in self.proposals]
        done: dict[int, TriedCandidate] = {}
        todo: list[int] = []
        first_of: dict[str, int] = {}  # a source proposed twice in the batch is judged once
        copies: dict[int, list[int]] = {}
        for i, p in enumerate(self.proposals):
            h = source_hash(p.source)
            if h in first_of:
                copies.setdefault(first_of[h], []).append(i)
                continue
            first_of[h] = i
            vid = store.find_verdict_id(task.source_hash, task.size, h, judge.device_name, self.key)
            if vid is None:
                todo.append(i)
                continue
            verdict = store.verdict(vid)
            store.link_verdict(self.run_id, vid)
            done[i] = self.tried(i, verdict, ids[i], reused=True)
            self.say(f"{self.tag(i)} {p.strategy}: {verdict.verdict} {verdict.speedup_text()}".rstrip()
                     + " (stored verdict reused)")
        for i in [i for i in done if i in copies]:
            done.update({c: self.tried(c, done[i].verdict, ids[c], reused=True) for c in copies[i]})
        out_of_time = False
        if todo:
            workers = os.cpu_count() or 1
            self.say(f"judging {len(todo)} candidate{'s' if len(todo) > 1 else ''}: builds on {workers} CPU workers, "
                     "evaluations one at a time")
            self.say(f"{self.tag(todo[0])} judging {self.proposals[todo[0]].strategy}")

            def on_result(j: int, verdict: Verdict) -> None:
                i = todo[j]
                store.add_verdict(ids[i], verdict, self.run_id, task=task, config_key=self.key,
                                  device_name=judge.device_name)
                done[i] = self.tried(i, verdict, ids[i], reused=False)
                done.update({c: self.tried(c, verdict, ids[c], reused=True) for c in copies.get(i, ())})
                self.say(f"{self.tag(i)} {self.proposals[i].strategy}: {verdict.verdict} "
                         f"{verdict.speedup_text()}".rstrip())
                if j + 1 < len(todo):
                    if self.deadline is not None and time.monotonic() >= self.deadline:
                        raise _OutOfTime
                    self.say(f"{self.tag(todo[j + 1])} judging {self.proposals[todo[j + 1]].strategy}")

            try:
                judge.evaluate_many([(task, self.proposals[i].source) for i in todo], build_workers=workers,
                                    on_result=on_result)
            except _OutOfTime:
                out_of_time = True
                self.say(f"wall time spent: {len(self.proposals) - len(done)} candidates left unjudged")
        return [done[i] for i in sorted(done)], out_of_time


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
    run_id = store.start_run(RUN_KIND, {"task": task.id, "size": task.size, "policy": policy.name,
                                         "budget": options.budget, "device": judge.device,
                                         "allow_lower_precision": options.allow_lower_precision},
                             judge.device_name, torch.__version__)
    result = OptimizeResult(task=task, device=judge.device, device_name=judge.device_name, policy=policy.name,
                            run_id=run_id, budget=options.budget)
    t0 = time.monotonic()
    deadline = None if options.wall_time_s is None else t0 + options.wall_time_s
    status = "interrupted"
    attempts: list[Attempt] = []
    stop = None
    try:
        while stop is None:
            left = options.budget - len(result.tried)
            if left <= 0:
                stop = "budget"
                break
            if deadline is not None and time.monotonic() >= deadline:
                stop = "wall-time"
                break
            say(f"proposing candidates for {task.id}")
            context = Context(device=judge.device, history=list(attempts),
                              allow_lower_precision=options.allow_lower_precision, budget=left)
            proposals = policy.propose(task, context)[:left]
            if not proposals:
                stop = "no-more-proposals"
                break
            batch = _Batch(task, policy, proposals, judge, store, run_id, key, say,
                           first=len(result.tried) + 1, budget=options.budget, deadline=deadline)
            tried, out_of_time = batch.run()
            result.tried.extend(tried)
            attempts.extend(Attempt(t.source, t.verdict, t.strategy, t.candidate_id) for t in tried)
            if out_of_time:
                stop = "wall-time"
        result.stop_reason = stop
        status = "done"
    finally:
        result.wall_s = time.monotonic() - t0
        store.finish_run(run_id, status)
    return write_outputs(result, options.out_dir, db=str(getattr(store, "path", "") or ""))
