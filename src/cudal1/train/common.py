"""What the stages share: the task list, prompts, keeping rules and the store recorder."""

from __future__ import annotations

import logging

from ..judge.verdict import Verdict
from ..search.judging import Recording, judge_and_store
from ..store.records import Attempt, Candidate
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
    """Judges a training run's samples through `judge_and_store`: each is stored under the
    judge's resume key (so a later optimize or bench reuses it, and the run reuses earlier
    verdicts of the same source), and rejected hacks join the case base (origin ``train:<kind>``).

    ``db``: a path, None for the default store, or '' for no store at all (judged, not kept).
    """

    def __init__(self, db: str | None, kind: str, config: dict, pool):
        from ..store import Store, config_key

        self.store = None
        self.run_id = None
        self.kind = kind
        self.pool = pool
        if db != "":
            import torch

            self.store = Store(db)
            from ..judge.device import resolve_device

            self.run_id = self.store.start_run(kind, config, resolve_device(pool.device), torch.__version__)
        self.recording = Recording(self.store, pool.device_name, config_key(pool.config), self.run_id,
                                   hack_origin=f"train:{kind}")

    def judge(self, items: list[tuple[Task, Candidate]]) -> list[Verdict]:
        """The verdicts of ``items`` in order (every item is judged or reused: none is skipped)."""
        if not items:
            return []
        return [a.verdict for a in judge_and_store(items, self.pool.evaluate, self.recording)]

    def history(self, task: Task, device: str | None = None) -> list[Attempt]:
        if self.store is None:
            return []
        return self.store.history(task.id, device=device, size=task.size)

    def finish(self, status: str = "done") -> None:
        if self.store is not None and self.run_id is not None:
            self.store.finish_run(self.run_id, status)
