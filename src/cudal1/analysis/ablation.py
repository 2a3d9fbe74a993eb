"""Ablation: how much each technique of a candidate contributes, measured by the judge.

For each technique that can be taken out without rewriting the candidate's kernels, a variant
without it is judged beside the full candidate (same judge session, same reference timings):

- **components** (candidates the optimizer composed): the optimizer writes the candidate again
  from all its strategies but one (`Regenerate`); the components come from the caller, the
  store's candidate record (``meta["components"]``) or a ``components:`` line in the file's header;
- **switches** (any candidate): global switches found in its source are turned off by a source
  transformation (`switches.SWITCHES`).

Each row gives the speedup with and without the technique and their ratio, its contribution;
a ratio below 1 means the candidate is faster without it (``hurts``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..judge.config import JudgeConfig
from ..judge.verdict import Verdict
from ..tasks.contract import Task
from .switches import SWITCHES, switch_off
from .tags import TagHit, find_tags

# Writes the candidate again from a subset of its components; None when that subset cannot be
# written (the row then says so).
Regenerate = Callable[[Task, tuple[str, ...]], "str | None"]
Judge = Callable[[list[tuple[Task, str]]], list[Verdict]]

_COMPONENTS_RE = re.compile(r"^[#\s]*(?:cudal1[-_ ])?components:\s*(.+)$", re.I | re.M)
# The rules optimizer's docstring: "Components, in order: simplify (...); compile-default (...)."
_RULES_COMPONENTS_RE = re.compile(r"Components, in order:\s*(.+?)(?:\n\s*\n|\"\"\")", re.S)


@dataclass(frozen=True)
class Variant:
    """The candidate without one technique."""

    technique: str
    kind: str  # component | switch
    change: str  # what was taken out, in words
    source: str | None  # None: could not be built (see note)
    note: str = ""


@dataclass(frozen=True)
class AblationRow:
    technique: str
    kind: str
    change: str
    with_speedup: float | None
    without_speedup: float | None
    without_verdict: str  # the variant's verdict (accepted, incorrect, build_error, ...) or "not run"
    contribution: float | None  # with / without: above 1 it helps, below 1 it hurts
    hurts: bool  # the candidate is faster without it
    within_noise: bool  # |log contribution| below the noise band
    note: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Explanation:
    """Tags, the judged candidate and one ablation row per removable technique."""

    task_id: str
    size: str
    device: str
    verdict: Verdict
    tags: tuple[TagHit, ...]
    components: tuple[str, ...]
    rows: tuple[AblationRow, ...]
    roofline: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "task": self.task_id, "size": self.size, "device": self.device,
            "verdict": self.verdict.to_json(), "tags": [t.to_json() for t in self.tags],
            "components": list(self.components), "rows": [r.to_json() for r in self.rows],
            "roofline": self.roofline,
        }


def components_from_source(source: str) -> tuple[str, ...]:
    """Components named in a ``components: a, b, c`` line of the candidate's header (comment
    or docstring, first 60 lines)."""
    head = "\n".join(source.splitlines()[:60])
    m = _RULES_COMPONENTS_RE.search(head)
    if m:
        parts = " ".join(m.group(1).split()).split("; ")
        return tuple(p.split(" ", 1)[0].strip(".") for p in parts if p.strip())
    m = _COMPONENTS_RE.search(head)
    if not m:
        return ()
    return tuple(c.strip().strip("`'\"") for c in re.split(r"[,\s]+", m.group(1).strip().rstrip(".")) if c.strip())


def component_variants(task: Task, components: tuple[str, ...], regenerate: Regenerate | None) -> list[Variant]:
    out = []
    for c in components:
        rest = tuple(x for x in components if x != c)
        if regenerate is None:
            out.append(Variant(c, "component", f"without strategy {c}", None, "no regenerator for this candidate's policy"))
            continue
        try:
            source = regenerate(task, rest)
        except Exception as e:  # noqa: BLE001 - one strategy that cannot be left out is one row, not a crash
            source, note = None, f"could not regenerate without it: {type(e).__name__}: {e}"
        else:
            note = "" if source else "the optimizer cannot write the candidate without it"
        out.append(Variant(c, "component", f"regenerated from {', '.join(rest) or 'no strategies (the reference)'}", source, note))
    return out


def switch_variants(source: str, skip: tuple[str, ...] = ()) -> list[Variant]:
    """One variant per global switch the source turns on (see `switches.SWITCHES`)."""
    out = []
    for sw in SWITCHES:
        if sw.id in skip:
            continue
        res = switch_off(source, sw.id)
        if res is not None:
            new, changes = res
            out.append(Variant(sw.id, "switch", "; ".join(changes), new))
    return out


def switches_on(source: str) -> set[str]:
    """The switches a source turns on."""
    return {sw.id for sw in SWITCHES if switch_off(source, sw.id) is not None}


def plan_variants(task: Task, source: str, components: tuple[str, ...] = (),
                  regenerate: Regenerate | None = None) -> list[Variant]:
    """Every variant to judge: component variants first, then the switches no component
    covers (a switch is covered when the variant without some component no longer has it, so
    that the same technique is not ablated twice)."""
    variants = component_variants(task, components, regenerate) if components else []
    full = switches_on(source)
    covered = {sw for v in variants if v.source for sw in full - switches_on(v.source)}
    return variants + switch_variants(source, skip=tuple(covered))


def reference_as_candidate(task: Task) -> str:
    """The reference itself as a candidate: what "no strategies at all" is."""
    return task.source.rstrip("\n") + "\n\n\nclass ModelNew(Model):\n    pass\n"


def rules_regenerator(device: str) -> Regenerate:
    """Regenerates candidates of the LLM-free optimizer (`cudal1.policies.rules`) from a subset
    of their components, with the same code the optimizer used to compose them."""
    from ..policies.rules import Plan, RulesPolicy

    policy = RulesPolicy()

    def regenerate(task: Task, components: tuple[str, ...]) -> str | None:
        if not components:
            return reference_as_candidate(task)
        proposal = policy.build(policy.traced(task), Plan(tuple(components)), device)
        return proposal.source if proposal else None

    return regenerate


def _row(v: Variant, full: Verdict, out: Verdict | None, noise: float) -> AblationRow:
    with_s = full.speedup if full.accepted else None
    if out is None:
        return AblationRow(v.technique, v.kind, v.change, with_s, None, "not run", None, False, False, v.note)
    without = out.speedup if out.accepted else None
    contribution = with_s / without if with_s and without else None
    hurts = contribution is not None and contribution < 1.0
    within = contribution is not None and abs(math.log(contribution)) < math.log1p(noise)
    note = v.note
    if not out.accepted:
        reason = out.findings[0].message if out.findings else ""
        note = (note + "; " if note else "") + f"without it the candidate is {out.verdict}" + (f" ({reason[:120]})" if reason else "")
    return AblationRow(v.technique, v.kind, v.change, with_s, without, out.verdict, contribution, hurts, within, note)


def explain_candidate(
    task: Task,
    source: str,
    device: str = "auto",
    config: JudgeConfig | None = None,
    components: tuple[str, ...] = (),
    regenerate: Regenerate | None = None,
    judge: Judge | None = None,
    noise: float = 0.03,
    on_result: Callable[[int, Verdict], None] | None = None,
) -> Explanation:
    """Judge ``source`` and one variant per removable technique; tag it; build the table.

    ``judge`` defaults to `cudal1.judge.evaluate_many` on ``device`` with ``config``: every
    speedup in the table comes from the real judge. ``components`` default to those named in the
    source's header. ``noise`` is the relative band inside which a contribution is marked as
    within noise.
    """
    from ..judge.device import resolve_device

    device = resolve_device(device)
    components = tuple(components) or components_from_source(source)
    variants = plan_variants(task, source, components, regenerate)
    runnable = [v for v in variants if v.source is not None]
    if judge is None:
        from ..judge import evaluate_many

        def judge(jobs):
            return evaluate_many(jobs, device=device, config=config, on_result=on_result)

    verdicts = judge([(task, source)] + [(task, v.source) for v in runnable])
    full, by_variant = verdicts[0], dict(zip((id(v) for v in runnable), verdicts[1:]))
    rows = tuple(_row(v, full, by_variant.get(id(v)), noise) for v in variants)
    return Explanation(
        task_id=task.id, size=task.size, device=full.device or device, verdict=full,
        tags=tuple(find_tags(task, source, full)), components=components, rows=rows,
    )
