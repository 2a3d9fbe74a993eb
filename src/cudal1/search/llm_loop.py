"""The LLM search loop (``cudal1 optimize --policy llm``): sample → judge → store, for rounds.

Each round plans one prompt per lineage (``options.samples`` lineages): exemplars drawn from
the accepted candidates (``options.exemplar_selection``) and, when the lineage's last
candidate failed, the concise reason (compiler error, mismatch, finding, malformed answer,
checker verdict). The LLM answers in parallel; answers with judgeable code go to the judge
(``Judge.evaluate_many``), each verdict stored as it arrives; malformed answers are stored as
candidates with ``meta["failure"]`` and no verdict (verdicts only come from the judge).
Accepted candidates with suspicious speedups go to the adversarial checker (search/checker.py).

Everything lives in the store, tagged ``meta["search"] = "<task hash>:<size>:<device name>"``
with ``meta["round"]`` and ``meta["lineage"]``; a rerun continues after the last stored round.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..judge import Judge, JudgeConfig, Verdict
from ..policies.base import Attempt, Context
from ..policies.llm.backends import LLMBackend, TokenBudget, make_backend
from ..policies.llm.policy import LLMPolicy, LLMSample, SamplePlan
from ..policies.llm.prompts import feedback_from_checker, feedback_from_failure, feedback_from_verdict
from ..store import Candidate, Store, config_key
from ..tasks.contract import Task, source_hash
from .checker import CHECKER_ORIGIN, CaseDoc, CheckResult, catalogue_cases, check_candidate, is_suspicious, store_cases
from .exemplars import PoolItem, select_exemplars
from .judging import Recording, judge_and_store
from .options import SearchOptions

log = logging.getLogger(__name__)

RUN_KIND = "llm-search"
POLICY = "llm"
SEED_POLICY = "rules"
SEED_PROPOSALS = 2


@dataclass
class SearchEntry:
    """One candidate this search produced (or found in the store on resume)."""

    candidate_id: int
    source: str
    round: int
    lineage: int
    verdict: Verdict | None = None
    failure: str | None = None
    checker: CheckResult | None = None
    strategy: str = ""
    reused: bool = False  # the verdict came from the store, not from judging it now

    @property
    def checker_rejected(self) -> bool:
        return self.checker is not None and self.checker.is_hack

    @property
    def accepted(self) -> bool:
        """Accepted by the judge and not found to be a hack by the checker."""
        return self.verdict is not None and self.verdict.accepted and not self.checker_rejected

    @property
    def status(self) -> str:
        if self.failure:
            return "malformed"
        if self.verdict is None:
            return "unjudged"
        return "rejected-by-checker" if self.checker_rejected else self.verdict.verdict

    def attempt(self) -> Attempt:
        return Attempt(source=self.source, verdict=self.verdict, strategy=self.strategy, candidate_id=self.candidate_id)


@dataclass
class LLMSearchOutcome:
    """What the loop did; `run_llm_search` turns it into the optimizer's result type."""

    task: Task
    run_id: int
    entries: list[SearchEntry] = field(default_factory=list)
    seeds: list[Attempt] = field(default_factory=list)
    best: Attempt | None = None
    rounds_done: int = 0
    resumed_rounds: int = 0
    stop_reason: str = "rounds"
    tokens: dict = field(default_factory=dict)
    request_failures: int = 0
    best_path: str | None = None


ProgressFn = Callable[[str], None]


def search_key(task: Task, device_name: str) -> str:
    return f"{task.source_hash}:{task.size}:{device_name}"


class _Search:
    def __init__(self, task: Task, options: SearchOptions, store: Store, judge_config: JudgeConfig,
                 backend: LLMBackend, progress: ProgressFn | None):
        self.task = task
        self.options = options
        self.store = store
        self.judge_config = judge_config
        self.backend = backend
        self.progress = progress or (lambda message: None)
        self.judge = Judge(options.device, judge_config)
        self.device_name = self.judge.device_name
        self.key = search_key(task, self.device_name)
        self.config_key = config_key(judge_config)
        self.policy = LLMPolicy(backend, device=self.device_name, allow_lower_precision=options.allow_lower_precision,
                                atol=judge_config.atol, exemplars=options.exemplars)
        self.entries: list[SearchEntry] = []
        self.others: list[Attempt] = []  # judged candidates of the task from other policies (seeds, user)
        self.feedback: dict[int, str] = {}
        self.hack_hashes: set[str] = set()
        self.run_id = 0
        self.request_failures = 0
        self._cases: list[CaseDoc] | None = None
        self.checked: dict[str, CheckResult] = {}  # source hash -> checker result, so duplicates are asked once

    # --- state from the store ----------------------------------------------------------------
    def load(self) -> None:
        self.hack_hashes = {h.source_hash for h in self.store.hacks(self.task.id)}
        seen: dict[int, SearchEntry] = {}
        for attempt in self.store.history(self.task.id, device=self.device_name, size=self.task.size):
            cand = self.store.candidate(attempt.candidate_id) if attempt.candidate_id is not None else None
            meta = cand.meta if cand else {}
            if cand is not None and cand.policy == POLICY and meta.get("search") == self.key:
                entry = seen.get(attempt.candidate_id) or SearchEntry(
                    attempt.candidate_id, attempt.source, int(meta.get("round", 0)), int(meta.get("lineage", 0)),
                    strategy=cand.strategy)
                entry.verdict = attempt.verdict
                entry.checker = CheckResult.from_json(meta["checker"]) if meta.get("checker") else None
                if entry.checker is None and source_hash(attempt.source) in self.hack_hashes and attempt.verdict.accepted:
                    entry.checker = CheckResult("hack", "confirmed hack in the store")
                seen[attempt.candidate_id] = entry
            elif self._same_measurement(attempt):
                self.others.append(attempt)
        for cid, cand in self._stored_failures():
            seen.setdefault(cid, SearchEntry(cid, cand.source, int(cand.meta.get("round", 0)),
                                             int(cand.meta.get("lineage", 0)), failure=cand.meta.get("failure"),
                                             strategy=cand.strategy))
        self.entries = sorted(seen.values(), key=lambda e: e.candidate_id)
        for entry in self.entries:  # the latest state of each lineage decides its feedback
            self._update_feedback(entry)

    def _same_measurement(self, attempt: Attempt) -> bool:
        """Whether the attempt was judged against this exact task source, size, device and judge
        settings (a task file edited under the same id, or other settings, give other speedups)."""
        return self.store.find_verdict(self.task.source_hash, self.task.size, source_hash(attempt.source),
                                       self.device_name, self.config_key) is not None

    def _stored_failures(self) -> list[tuple[int, Candidate]]:
        """Malformed answers of this search (candidates without verdicts)."""
        rows = self.store.candidates(self.task.id, policy=POLICY)
        return [(cid, c) for cid, c in rows if c.meta.get("search") == self.key and c.meta.get("failure")]

    @property
    def next_round(self) -> int:
        return max((e.round for e in self.entries), default=-1) + 1

    def pool(self) -> list[PoolItem]:
        items = [PoolItem(a) for a in self.others if a.verdict.accepted and source_hash(a.source) not in self.hack_hashes]
        items += [PoolItem(e.attempt(), e.lineage) for e in self.entries if e.accepted]
        return items

    def best(self) -> Attempt | None:
        pool = [i.attempt for i in self.pool()]
        return max(pool, key=lambda a: a.speedup or 0.0, default=None)

    def _update_feedback(self, entry: SearchEntry) -> None:
        if entry.failure:
            self.feedback[entry.lineage] = feedback_from_failure(entry.failure)
        elif entry.checker_rejected:
            self.feedback[entry.lineage] = feedback_from_checker(entry.checker.reason)
        elif entry.verdict is not None:
            fb = feedback_from_verdict(entry.verdict)
            if fb:
                self.feedback[entry.lineage] = fb
            else:
                self.feedback.pop(entry.lineage, None)

    # --- seeding -------------------------------------------------------------------------------
    def seed_with_rules(self) -> list[Attempt]:
        """Judge a couple of the LLM-free optimizer's proposals, unless accepted non-LLM
        candidates of the task are already in the store (then those seed the pool)."""
        if any(a.verdict.accepted for a in self.others):
            return []
        try:
            from ..policies.rules import RulesPolicy
        except ImportError as exc:
            log.warning("cannot seed with the LLM-free optimizer: %s", exc)
            return []
        try:
            proposals = RulesPolicy().propose(self.task, Context(device=self.judge.device, history=[], budget=SEED_PROPOSALS,
                                                                 allow_lower_precision=self.options.allow_lower_precision))
        except Exception as exc:  # noqa: BLE001 - seeding is optional
            log.warning("the LLM-free optimizer could not propose seeds for %s: %s", self.task.id, exc)
            return []
        proposals = proposals[:SEED_PROPOSALS]
        if not proposals:
            return []
        self.progress(f"seeding with {len(proposals)} LLM-free candidate(s)")
        seeds = self._judge([Candidate.from_proposal(self.task.id, p, SEED_POLICY, {"seed_for": self.key})
                             for p in proposals], best_before=None)
        self.others.extend(seeds)
        return seeds

    # --- judging -------------------------------------------------------------------------------
    def _judge(self, candidates: list[Candidate], best_before: float | None,
               candidate_ids: list[int] | None = None) -> list[Attempt]:
        """Attempts for the candidates through `judge_and_store`: a stored verdict of the same
        source under the same task, size, device and judge config is reused, the rest judged."""
        judge = Judge(self.judge.device, dataclasses.replace(self.judge_config, best_speedup=best_before))
        judged = 0

        def on_attempt(i: int, attempt: Attempt) -> None:
            nonlocal judged
            if not attempt.reused:
                judged += 1
                v = attempt.verdict
                self.progress(f"judged {judged}: {v.verdict}" + (f" {v.speedup:.2f}x" if v.speedup else ""))

        recording = Recording(self.store, self.device_name, self.config_key, self.run_id)
        return judge_and_store([(self.task, c) for c in candidates],
                               lambda jobs, on_result: judge.evaluate_many(jobs, on_result=on_result),
                               recording, candidate_ids=candidate_ids, on_attempt=on_attempt)  # type: ignore[return-value]

    # --- one round -----------------------------------------------------------------------------
    def plans(self, round_index: int) -> list[SamplePlan]:
        rng = random.Random(f"{self.key}:{round_index}")
        pool = self.pool()
        return [
            SamplePlan(
                exemplars=tuple(select_exemplars(self.options.exemplar_selection, pool, self.options.exemplars, rng,
                                                 tau=self.options.tau, island=lineage)),
                feedback=self.feedback.get(lineage), lineage=lineage,
            )
            for lineage in range(self.options.samples)
        ]

    def run_round(self, round_index: int) -> list[SearchEntry]:
        best_before = (self.best().speedup if self.best() else None)
        samples = self.policy.sample(self.task, self.plans(round_index))
        new: list[SearchEntry] = []
        to_judge: list[SearchEntry] = []
        for s in samples:
            if not s.completion.ok:
                if s.completion.attempts:  # 0 attempts: refused by the token budget, nothing was asked
                    self.request_failures += 1
                    log.warning("LLM request for lineage %d failed: %s", s.plan.lineage, s.completion.error)
                continue
            entry = self._store_sample(s, round_index)
            new.append(entry)
            if entry.failure is None:
                to_judge.append(entry)
        if to_judge:
            attempts = self._judge([Candidate(self.task.id, e.source, POLICY, e.strategy) for e in to_judge], best_before,
                                   [e.candidate_id for e in to_judge])
            for e, a in zip(to_judge, attempts, strict=True):
                e.verdict, e.reused = a.verdict, a.reused
        for e in new:
            if e.verdict is not None and e.verdict.accepted and is_suspicious(e.verdict.speedup, best_before):
                self._check(e, best_before)
        self.entries.extend(new)
        for e in new:
            self._update_feedback(e)
        return new

    def _store_sample(self, s: LLMSample, round_index: int) -> SearchEntry:
        failure = s.failure
        meta = {
            "search": self.key, "round": round_index, "lineage": s.plan.lineage, "model": s.completion.model,
            "usage": s.completion.usage(), "exemplars": [
                {"candidate_id": a.candidate_id, "speedup": a.speedup} for a in s.plan.exemplars],
            "feedback": bool(s.plan.feedback), "missing_sections": list(s.parsed.missing_sections),
            "exemplar_selection": self.options.exemplar_selection,
        }
        if failure:
            meta["failure"] = failure
        source = s.proposal.source if not failure else s.parsed.source  # a truncated answer keeps its partial code
        p = dataclasses.replace(s.proposal, source=source)
        cid = self.store.add_candidate(Candidate.from_proposal(self.task.id, p, POLICY, meta))
        return SearchEntry(cid, source, round_index, s.plan.lineage, failure=failure, strategy=p.strategy)

    # --- the adversarial checker ---------------------------------------------------------------
    def cases(self) -> list[CaseDoc]:
        if self._cases is None:
            self._cases = catalogue_cases()
        return self._cases + store_cases(self.store.hacks())

    def _check(self, entry: SearchEntry, best_before: float | None) -> CheckResult:
        h = source_hash(entry.source)
        if h in self.hack_hashes:  # already a confirmed hack: no need to ask again
            entry.checker = CheckResult("hack", "a confirmed hack in the store", reused=True)
        elif h in self.checked:
            entry.checker = dataclasses.replace(self.checked[h], reused=True)
        else:
            self.progress(f"checker: candidate {entry.candidate_id} at {entry.verdict.speedup:.2f}x")
            result = check_candidate(self.backend, self.task, entry.source, entry.verdict.speedup, self.cases(),
                                     best_before=best_before)
            entry.checker = self.checked[h] = result
            if result.is_hack:
                self.store.add_hack(self.task.id, entry.source, result.reason or "the adversarial checker found a hack",
                                    origin=f"{CHECKER_ORIGIN}:candidate-{entry.candidate_id}")
                self.hack_hashes.add(h)
        self.store.update_candidate_meta(entry.candidate_id, {"checker": entry.checker.to_json()})
        return entry.checker


def _options_record(options: SearchOptions) -> dict:
    """The run's config as stored: the options, never a key (only the variable's name is kept)."""
    return dataclasses.asdict(options)


def search(task: Task, options: SearchOptions, store: Store | None = None, judge_config: JudgeConfig | None = None,
           progress: ProgressFn | None = None, backend: LLMBackend | None = None) -> LLMSearchOutcome:
    """Run (or continue) the LLM search for one task; see the module docstring."""
    if options.size and task.size != options.size:
        task = task.with_size(options.size)
    store = store or Store(options.db)
    judge_config = judge_config or JudgeConfig(allow_lower_precision=options.allow_lower_precision)
    backend = backend or make_backend(options.llm, TokenBudget(options.llm.token_budget))
    s = _Search(task, options, store, judge_config, backend, progress)
    store.add_task(task)
    config = {**_options_record(options), "task": task.id, "size": task.size}
    run_id = store.resumable_run(RUN_KIND, config)
    if run_id is not None:
        store.reopen_run(run_id)
    else:
        import torch

        run_id = store.start_run(RUN_KIND, config, s.device_name, torch.__version__)
    s.run_id = run_id
    outcome = LLMSearchOutcome(task=task, run_id=run_id)
    status = "interrupted"
    try:
        s.load()
        outcome.resumed_rounds = s.next_round
        if options.seed_with_rules and s.next_round == 0:
            outcome.seeds = s.seed_with_rules()
        start = time.monotonic()
        stop = "rounds"
        for r in range(s.next_round, options.rounds):
            if backend.budget.exhausted:
                stop = "token-budget"
                break
            if options.wall_time_s is not None and time.monotonic() - start >= options.wall_time_s:
                stop = "wall-time"
                break
            s.progress(f"round {r + 1}/{options.rounds}: sampling {options.samples}")
            new = s.run_round(r)
            outcome.rounds_done += 1
            s.progress(f"round {r + 1}: " + ", ".join(e.status for e in new))
            if not new:
                stop = "token-budget" if backend.budget.exhausted else "llm-unavailable"
                break
        outcome.stop_reason = stop
        status = "done"
    finally:
        store.finish_run(run_id, status)
    outcome.entries = s.entries
    outcome.best = s.best()
    outcome.tokens = backend.budget.to_json()
    outcome.request_failures = s.request_failures
    return outcome


def to_optimize_result(outcome: LLMSearchOutcome, device: str, device_name: str, wall_s: float):
    """The optimizer's result type. ``tried`` holds every candidate whose judge verdict stands
    (seeds, and the LLM's judged candidates in order); candidates the checker found to be hacks
    are left out of ``tried`` (so they can never be the written best) and listed, like the
    malformed answers, under ``extra``."""
    from .optimize import OptimizeResult

    tried = [dataclasses.replace(a, strategy=a.strategy or SEED_POLICY, policy=SEED_POLICY, notes="", reused=False)
             for a in outcome.seeds]
    resumed = outcome.resumed_rounds
    for e in outcome.entries:
        if e.verdict is None or e.checker_rejected:
            continue
        tried.append(Attempt(
            source=e.source, strategy=f"{e.strategy or POLICY} r{e.round + 1}.{e.lineage + 1}", verdict=e.verdict,
            candidate_id=e.candidate_id, policy=POLICY, reused=e.round < resumed or e.reused,
            notes=f"round {e.round + 1}, lineage {e.lineage + 1}"))
    extra = {
        "rounds": {"done_now": outcome.rounds_done, "resumed_from": resumed},
        "tokens": outcome.tokens,
        "request_failures": outcome.request_failures,
        "malformed": [{"candidate_id": e.candidate_id, "round": e.round + 1, "lineage": e.lineage + 1,
                       "reason": e.failure} for e in outcome.entries if e.failure],
        "checker_rejected": [{"candidate_id": e.candidate_id, "round": e.round + 1, "lineage": e.lineage + 1,
                              "judge_speedup": e.verdict.speedup, "reason": e.checker.reason}
                             for e in outcome.entries if e.checker_rejected],
        "checked": [{"candidate_id": e.candidate_id, **{k: v for k, v in e.checker.to_json().items() if k != "reason"}}
                    for e in outcome.entries if e.checker],
    }
    return OptimizeResult(task=outcome.task, device=device, device_name=device_name, policy=POLICY, tried=tried,
                          run_id=outcome.run_id, wall_s=wall_s, stop_reason=outcome.stop_reason, extra=extra)


def run_llm_search(task: Task, options: SearchOptions, store: Store | None = None,
                   judge_config: JudgeConfig | None = None, progress: ProgressFn | None = None,
                   backend: LLMBackend | None = None):
    """Run (or resume) the LLM search for ``task`` and write its best accepted candidate and
    report to ``options.out_dir``; returns an `OptimizeResult` (``policy="llm"``)."""
    from ..judge.device import resolve_device
    from .optimize import write_outputs

    t0 = time.monotonic()
    store = store or Store(options.db)
    judge_config = judge_config or JudgeConfig(allow_lower_precision=options.allow_lower_precision)
    device = resolve_device(options.device)
    options = dataclasses.replace(options, device=device)
    outcome = search(task, options, store, judge_config, progress, backend)
    device_name = Judge(device, judge_config).device_name
    result = to_optimize_result(outcome, device, device_name, time.monotonic() - t0)
    return write_outputs(result, options.out_dir, db=str(store.path))
