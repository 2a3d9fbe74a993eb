"""One path from proposals to stored verdicts: `judge_and_store`.

The optimizer, the LLM search, the bench and the training stages all judge candidates and keep
the verdicts through this function, so that each does the same five things the same way:

* **storing**: each candidate is recorded (an equal stored candidate is used again);
* **reuse**: a source already judged under the same task, size, device name and judge settings
  (the resume key) takes its stored verdict instead of being judged again, unless that verdict
  records the judge's own crash (`judge_failed`);
* **judging**: everything else goes to ``evaluate`` in one batch (a source that appears twice is
  judged once), and each verdict is stored the moment it arrives, so nothing judged is lost
  when a process is killed;
* **hack cases**: with ``Recording.hack_origin`` set, rejected candidates join the store's
  confirmed hacks (the adversarial checker's case base);
* **progress**: ``on_start`` hears which candidates will be judged, ``on_attempt`` each
  `Attempt` as soon as it is known (reused ones first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..judge.verdict import Verdict
from ..store import Candidate, Store
from ..store.records import Attempt
from ..tasks.contract import Task

Jobs = list[tuple[Task, str]]
# Judges the jobs, calling on_result(index, verdict) as each verdict arrives (in any order).
Evaluate = Callable[[Jobs, Callable[[int, Verdict], None]], object]


@dataclass(frozen=True)
class Recording:
    """Where a batch's verdicts go and the resume key they are stored under.

    ``store`` None judges without storing or reusing anything (a training run without a store);
    ``reuse`` False judges again what the store already has (``bench --fresh``)."""

    store: Store | None
    device_name: str
    config_key: str
    run_id: int | None = None
    hack_origin: str | None = None
    reuse: bool = True


def judge_failed(verdict: Verdict | None) -> bool:
    """A verdict that records the judge's own crash, not the candidate's: never reused."""
    return verdict is not None and any(f.id == "crash" and f.message.startswith("judge error") for f in verdict.findings)


class _Stopped(Exception):
    """Raised from the result callback once ``stop()`` says so: the judge skips the rest."""


def judge_and_store(
    items: Sequence[tuple[Task, Candidate]],
    evaluate: Evaluate,
    recording: Recording,
    *,
    candidate_ids: Sequence[int] | None = None,
    on_start: Callable[[list[int]], None] | None = None,
    on_attempt: Callable[[int, Attempt], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[Attempt | None]:
    """Judge ``items`` (each candidate with its task) and store every verdict; see the module doc.

    ``candidate_ids``: the items are stored already (the LLM search stores every answer, judged
    or not). ``stop()`` is asked after each verdict while others wait; once it is true the rest
    are left unjudged. Returns one `Attempt` per item in order, None for those left unjudged.
    """
    batch = _Batch(items, recording, on_attempt)
    batch.store_candidates(candidate_ids)
    todo = batch.reuse_stored()
    if on_start:
        on_start(list(todo))
    if not todo:
        return batch.out

    def on_result(k: int, verdict: Verdict) -> None:
        batch.settle(todo[k], verdict, reused=False)
        if stop is not None and k + 1 < len(todo) and stop():
            raise _Stopped

    try:
        evaluate([(items[i][0], items[i][1].source) for i in todo], on_result)
    except _Stopped:
        pass
    return batch.out


class _Batch:
    """The items of one `judge_and_store` call: their store ids, copies and attempts so far."""

    def __init__(self, items: Sequence[tuple[Task, Candidate]], recording: Recording,
                 on_attempt: Callable[[int, Attempt], None] | None):
        self.items = items
        self.rec = recording
        self.store = recording.store
        self.on_attempt = on_attempt
        self.ids: list[int | None] = [None] * len(items)
        self.out: list[Attempt | None] = [None] * len(items)
        self.copies: dict[int, list[int]] = {}  # first item -> later items with the same task and source

    def store_candidates(self, given: Sequence[int] | None) -> None:
        if given is not None:
            self.ids = list(given)
            return
        if self.store is None:
            return
        for task in {t.source_hash + t.size: t for t, _ in self.items}.values():
            self.store.add_task(task)
        self.ids = [_stored_id(self.store, c) for _, c in self.items]

    def reuse_stored(self) -> list[int]:
        """Settle the items whose verdict the store has; return the indices left to judge."""
        first_of: dict[tuple[str, str, str], int] = {}
        for i, (task, cand) in enumerate(self.items):
            key = (task.source_hash, task.size, cand.source_hash)
            if key in first_of:
                self.copies.setdefault(first_of[key], []).append(i)
            else:
                first_of[key] = i
        todo = []
        for i in first_of.values():
            stored = self._stored_verdict(*self.items[i])
            if stored is None:
                todo.append(i)
            else:
                self.settle(i, stored, reused=True)
        return todo

    def _stored_verdict(self, task: Task, cand: Candidate) -> int | None:
        if self.store is None or not self.rec.reuse:
            return None
        vid = self.store.find_verdict_id(task.source_hash, task.size, cand.source_hash, self.rec.device_name,
                                         self.rec.config_key)
        return None if vid is None or judge_failed(self.store.verdict(vid)) else vid

    def settle(self, i: int, verdict: Verdict | int, reused: bool) -> None:
        """Record item ``i``'s verdict (a new `Verdict`, or a stored verdict's id) and its copies'."""
        for j in [i, *self.copies.get(i, ())]:
            verdict = self._record(j, verdict, reused or j != i)
            task, cand = self.items[j]
            attempt = self.out[j] = Attempt.of(cand, verdict, self.ids[j], reused=reused or j != i)
            if self.store is not None and self.rec.hack_origin and verdict.verdict == "rejected":
                reasons = "; ".join(f"[{f.id}] {f.message}" for f in verdict.findings if f.severity == "reject")
                self.store.add_hack(task.id, cand.source, reasons or "rejected by the judge", origin=self.rec.hack_origin)
            if self.on_attempt:
                self.on_attempt(j, attempt)

    def _record(self, j: int, verdict: Verdict | int, reused: bool) -> Verdict:
        store, rec, cid = self.store, self.rec, self.ids[j]
        task, cand = self.items[j]
        if store is None or cid is None:
            return verdict
        if isinstance(verdict, int):  # a stored verdict's id
            return store.reuse_verdict(verdict, cid, rec.run_id, cand.run_kind)
        if reused:  # a copy of a verdict judged in this batch
            vid = store.find_verdict_id(task.source_hash, task.size, cand.source_hash, rec.device_name, rec.config_key)
            return store.reuse_verdict(vid, cid, rec.run_id, cand.run_kind) if vid is not None else verdict
        store.add_verdict(cid, verdict, rec.run_id, task=task, config_key=rec.config_key,
                          device_name=rec.device_name, kind=cand.run_kind)
        return verdict


def _stored_id(store: Store, cand: Candidate) -> int:
    """The id of the earliest stored candidate equal to ``cand`` (same task, source and
    provenance), else of a new record."""
    cid = store.find_candidate(cand.task_id, cand.source_hash, policy=cand.policy)
    if cid is not None and store.candidate(cid) == cand:
        return cid
    return store.add_candidate(cand)
