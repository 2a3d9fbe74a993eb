"""The LLM-free optimize loop: propose → judge → store, within a budget; write the best.

``optimize(task, policy, options)`` asks the policy for candidates (best first), judges each
(reusing a stored verdict when this exact source was judged under the same task, size, device
and judge settings), stores candidates, verdicts and a run, and writes to ``options.out_dir``:

* ``best_<task>.py``: the fastest candidate the judge ACCEPTED that beats the reference, at
  full precision, with a header giving its measured verdict (never a candidate that was not
  accepted; nothing when no accepted candidate is faster than the reference);
* ``best_<task>_lower_precision.py`` likewise among lower-precision candidates (only with
  ``allow_lower_precision``), reported separately;
* ``report.json``: every candidate tried with strategy, verdict, findings and speedup.

`OptimizeResult` is also what the LLM search (``run_llm_search``) returns.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..judge import JudgeConfig, Verdict
from ..policies.base import Attempt, Context, Policy, Proposal
from ..tasks.contract import Task, source_hash
from .options import SearchOptions

log = logging.getLogger(__name__)

RUN_KIND = "optimize"
ProgressFn = Callable[[str], None]


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
    def is_lower_precision(self) -> bool:
        return self.lower_precision or bool(self.verdict.details.get("lower_precision")) or any(
            f.id in ("lower-precision", "lower-precision-flags") for f in self.verdict.findings)

    def to_json(self, index: int) -> dict:
        v = self.verdict
        return {
            "index": index, "strategy": self.strategy, "components": list(self.components), "policy": self.policy,
            "lower_precision": self.is_lower_precision, "verdict": v.verdict, "speedup": v.speedup,
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
    stop_reason: str = ""
    extra: dict = field(default_factory=dict)

    def _best(self, lower: bool) -> TriedCandidate | None:
        pool = [t for t in self.tried if t.verdict.accepted and t.speedup and t.is_lower_precision == lower]
        return max(pool, key=lambda t: t.speedup, default=None)

    @property
    def best(self) -> TriedCandidate | None:
        """The fastest accepted full-precision candidate (it may be slower than the reference)."""
        return self._best(False)

    @property
    def best_lower_precision(self) -> TriedCandidate | None:
        return self._best(True)

    @property
    def beats_reference(self) -> bool:
        return self.best is not None and self.best.speedup > 1.0

    @property
    def speedup(self) -> float:
        """The task's result: the best accepted speedup, or 1.0 (keep the reference)."""
        return max(1.0, self.best.speedup) if self.best else 1.0

    def message(self) -> str:
        """One plain sentence on the outcome."""
        n_acc = sum(t.verdict.accepted for t in self.tried)
        lp = self.best_lower_precision
        lp_txt = (f" A lower-precision candidate ({lp.strategy}) reached {lp.speedup:.2f}x (reported separately)."
                  if lp is not None and lp.speedup > 1.0 else "")
        if not self.tried:
            return f"No candidate applies to this task on {self.device_name}: keep the reference."
        if self.beats_reference:
            b = self.best
            return (f"Best accepted candidate: {b.strategy} at {b.speedup:.2f}x over the reference "
                    f"({b.verdict.ref_ms:.4g} ms -> {b.verdict.candidate_ms:.4g} ms) on {self.device_name}.{lp_txt}")
        lp = self.best_lower_precision
        lp_txt = (f" A lower-precision candidate ({lp.strategy}) reached {lp.speedup:.2f}x (reported separately)."
                  if lp is not None and lp.speedup > 1.0 else "")
        if n_acc:
            b = self.best
            best_txt = f", the best full-precision one at {b.speedup:.2f}x ({b.strategy})" if b else ""
            return (f"Nothing beat the reference: {n_acc} of {len(self.tried)} candidates were accepted{best_txt}; "
                    f"keep the reference.{lp_txt}")
        return f"Nothing beat the reference: none of the {len(self.tried)} candidates was accepted; keep the reference."

    def to_json(self) -> dict:
        best = self.best
        lp = self.best_lower_precision
        return {
            "task": self.task.id, "size": self.task.size, "device": self.device, "device_name": self.device_name,
            "policy": self.policy, "run_id": self.run_id, "wall_s": round(self.wall_s, 2),
            "stop_reason": self.stop_reason, "beats_reference": self.beats_reference, "speedup": self.speedup,
            "message": self.message(),
            "best": None if best is None else {"strategy": best.strategy, "speedup": best.speedup,
                                               "candidate_id": best.candidate_id, "path": self.best_path},
            "best_lower_precision": None if lp is None else {"strategy": lp.strategy, "speedup": lp.speedup,
                                                             "candidate_id": lp.candidate_id,
                                                             "path": self.best_lower_precision_path},
            "tried": [t.to_json(i) for i, t in enumerate(self.tried, 1)],
            **({"extra": self.extra} if self.extra else {}),
        }


def best_file_name(task: Task, suffix: str = "") -> str:
    return f"best_{task.id.replace('/', '_')}{suffix}.py"


def verdict_header(task: Task, t: TriedCandidate, device_name: str, db: str | None = None) -> str:
    """The comment block at the top of a written best candidate: its measured verdict."""
    v = t.verdict
    findings = ", ".join(f"{f.id} ({f.severity})" for f in v.findings) or "none"
    lines = [
        f"# cudal1: ACCEPTED by the judge for {task.id} (size {task.size}) on {device_name}, torch {v.torch}",
        f"# speedup {v.speedup:.3f}x over the reference: {v.ref_ms:.4g} ms -> {v.candidate_ms:.4g} ms"
        + (f", max abs error {v.max_abs_error:.3g}" if v.max_abs_error is not None else ""),
        f"# strategy: {t.strategy} (policy {t.policy})" + ("; LOWER PRECISION" if t.is_lower_precision else ""),
        f"# findings: {findings}",
    ]
    if t.candidate_id is not None:
        lines.append(f"# candidate id {t.candidate_id}" + (f" in {db}" if db else ""))
    return "\n".join(lines) + "\n"


def write_outputs(result: OptimizeResult, out_dir: str | Path, db: str | None = None) -> OptimizeResult:
    """Write the best accepted candidates (only when faster than the reference) and report.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for t, suffix, attr in ((result.best, "", "best_path"),
                            (result.best_lower_precision, "_lower_precision", "best_lower_precision_path")):
        if t is not None and t.verdict.accepted and t.speedup and t.speedup > 1.0:
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


def _judge_one(task, policy, p: Proposal, judge, store, run_id, key, say, tag) -> TriedCandidate:
    """Store the candidate, then reuse its stored verdict under the same key or judge it."""
    from ..store import Candidate

    h = source_hash(p.source)
    cid = store.find_candidate(task.id, h, policy.name) or store.add_candidate(Candidate(
        task_id=task.id, source=p.source, policy=policy.name, strategy=p.strategy, parents=p.parents,
        prompt=p.prompt, response=p.response, template_version=p.template_version, notes=p.notes,
        meta=_candidate_meta(policy, task, p)))
    reused_id = store.find_verdict_id(task.source_hash, task.size, h, judge.device_name, key)
    if reused_id is not None:
        verdict = store.verdict(reused_id)
        store.link_verdict(run_id, reused_id)
        say(f"{tag} {p.strategy}: {verdict.verdict} (stored verdict reused)")
    else:
        say(f"{tag} judging {p.strategy}")
        verdict = judge.evaluate(task, p.source)
        store.add_verdict(cid, verdict, run_id, task=task, config_key=key, device_name=judge.device_name)
        say(f"{tag} {p.strategy}: {verdict.verdict}" + (f" {verdict.speedup:.2f}x" if verdict.speedup else ""))
    return TriedCandidate(source=p.source, strategy=p.strategy, verdict=verdict, candidate_id=cid,
                          components=p.components, lower_precision=p.lower_precision, notes=p.notes,
                          policy=policy.name, reused=reused_id is not None)


def optimize(task: Task, policy: Policy, options: SearchOptions, store=None, judge_config: JudgeConfig | None = None,
             progress: ProgressFn | None = None, judge=None) -> OptimizeResult:
    """Run ``policy`` on ``task`` for at most ``options.budget`` judged candidates; see the module doc."""
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
    result = OptimizeResult(task=task, device=judge.device, device_name=judge.device_name, policy=policy.name, run_id=run_id)
    t0 = time.monotonic()
    status = "interrupted"
    attempts: list[Attempt] = []
    stop = None
    try:
        while stop is None:
            if len(result.tried) >= options.budget:
                stop = "budget"
                break
            say(f"proposing candidates for {task.id}")
            context = Context(device=judge.device, history=list(attempts),
                              allow_lower_precision=options.allow_lower_precision,
                              budget=options.budget - len(result.tried))
            proposals = policy.propose(task, context)[: options.budget - len(result.tried)]
            if not proposals:
                stop = "no-more-proposals"
                break
            for p in proposals:
                if options.wall_time_s is not None and time.monotonic() - t0 >= options.wall_time_s:
                    stop = "wall-time"
                    break
                tried = _judge_one(task, policy, p, judge, store, run_id, key, say,
                                   f"[{len(result.tried) + 1}/{options.budget}]")
                result.tried.append(tried)
                attempts.append(Attempt(p.source, tried.verdict, p.strategy, tried.candidate_id))
        result.stop_reason = stop
        status = "done"
    finally:
        result.wall_s = time.monotonic() - t0
        store.finish_run(run_id, status)
    return write_outputs(result, options.out_dir, db=str(getattr(store, "path", "") or ""))
