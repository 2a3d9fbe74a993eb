"""What the stages share: the task list, prompts, keeping rules and the store recorder."""

from __future__ import annotations

import logging

from ..judge.verdict import Verdict
from ..policies.base import Attempt
from ..store.records import Candidate
from ..tasks.contract import Task
from .config import TaskSelection

log = logging.getLogger(__name__)

KEEP_RULES = ("correct", "accepted", "faster")


def select_tasks(sel: TaskSelection) -> list[Task]:
    """The tasks a stage works on, in suite order (ids that do not exist are an error)."""
    from ..tasks import load_suite, resolve_task

    if sel.ids:
        return [resolve_task(i, size=sel.size, suite=sel.suite) for i in sel.ids]
    loaded = load_suite(sel.suite, size=sel.size, level=sel.level)
    for e in loaded.errors:
        log.warning("skipping task: %s", e)
    if not loaded.tasks:
        raise ValueError(f"no tasks in suite {sel.suite!r}" + (f" at level {sel.level}" if sel.level else ""))
    return loaded.tasks


def keeps(verdict: Verdict, rule: str) -> bool:
    """Whether a judged sample joins the fine-tuning data.

    ``correct``: right outputs and no hack finding (any speed); ``accepted``: the judge accepted
    it; ``faster``: accepted with a speedup above 1.
    """
    if verdict.verdict == "rejected":
        return False
    if rule == "correct":
        return verdict.accepted or verdict.correct
    if rule == "accepted":
        return verdict.accepted
    if rule == "faster":
        return verdict.accepted and (verdict.speedup or 0.0) > 1.0
    raise ValueError(f"unknown keep rule {rule!r}: use one of {', '.join(KEEP_RULES)}")


def prompt_device(judge_device: str) -> str:
    """The device named in prompts: what the judge measures on."""
    from ..judge.device import resolve_device

    d = resolve_device(judge_device)
    return "cuda" if d.startswith("cuda") else d


def first_prompt(task: Task, device: str, template: str | None = None):
    """Stage 1/2 prompt: the reference alone (the first-round template)."""
    from ..policies.llm.prompts import FIRST_ROUND, render_search_prompt

    return render_search_prompt(task, [], device=device, first_round=template or FIRST_ROUND)


def parse_source(text: str) -> str | None:
    """The ``ModelNew`` code of a response, or None when nothing judgeable is in it."""
    from ..policies.llm.parse import parse_response

    parsed = parse_response(text)
    return parsed.source if parsed.ok and parsed.source else None


class StoreRecorder:
    """Writes every judged sample of a training run to the store; rejected hacks join the case base.

    ``db``: a path, None for the default store, or '' for no store at all.
    """

    def __init__(self, db: str | None, kind: str, config: dict, device: str):
        self.store = None
        self.run_id = None
        self.kind = kind
        if db == "":
            return
        import torch

        from ..store import Store

        self.store = Store(db)
        self.run_id = self.store.start_run(kind, config, device, torch.__version__)

    def record(self, task: Task, source: str, verdict: Verdict, *, policy: str, strategy: str,
               prompt: str | None = None, response: str | None = None, template_version: str | None = None,
               meta: dict | None = None) -> int | None:
        if self.store is None:
            return None
        self.store.add_task(task)
        cid = self.store.add_candidate(Candidate(task_id=task.id, source=source, policy=policy, strategy=strategy,
                                                 prompt=prompt, response=response, template_version=template_version,
                                                 meta=meta or {}))
        self.store.add_verdict(cid, verdict, self.run_id, task=task)
        if verdict.verdict == "rejected":
            reasons = "; ".join(f"[{f.id}] {f.message}" for f in verdict.findings if f.severity == "reject")
            self.store.add_hack(task.id, source, reasons or "rejected by the judge", origin=f"train:{self.kind}")
        return cid

    def history(self, task: Task, device: str | None = None) -> list[Attempt]:
        if self.store is None:
            return []
        return self.store.history(task.id, device=device, size=task.size)

    def finish(self, status: str = "done") -> None:
        if self.store is not None and self.run_id is not None:
            self.store.finish_run(self.run_id, status)
