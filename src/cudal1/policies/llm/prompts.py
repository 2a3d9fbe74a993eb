"""Prompts from versioned templates (``policies/templates/*.j2``).

A template's version is its file name without ``.j2`` (``contrastive_v1``); the version is
stored with every candidate (``Proposal.template_version``). A released template is never
edited: a changed prompt is a new file (``contrastive_v2.j2``), so stored candidates always
say which words produced them. Files starting with ``_`` are shared fragments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ...judge.verdict import Verdict
from ...tasks.contract import Task
from ..base import Attempt

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
CONTRASTIVE = "contrastive_v1"
FIRST_ROUND = "first_round_v1"
CHECKER = "checker_v1"
FEEDBACK_CHARS = 1500


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt and the template version that produced it."""

    text: str
    template_version: str

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.text}]


@dataclass(frozen=True)
class HackCase:
    """A known hack shown to the checker: a catalogue pattern or a confirmed case from the store."""

    title: str
    description: str
    example: str = ""


@lru_cache(maxsize=1)
def _env():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def template_versions() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.j2") if not p.name.startswith("_"))


def render(template_version: str, **context) -> Prompt:
    if template_version not in template_versions():
        raise ValueError(f"unknown prompt template {template_version!r}; known: {', '.join(template_versions())}")
    text = _env().get_template(f"{template_version}.j2").render(**context)
    return Prompt(text=text.strip() + "\n", template_version=template_version)


def render_search_prompt(
    task: Task,
    exemplars: Sequence[Attempt],
    *,
    device: str = "cuda",
    feedback: str | None = None,
    allow_lower_precision: bool = False,
    atol: float = 1e-2,
    contrastive: str = CONTRASTIVE,
    first_round: str = FIRST_ROUND,
) -> Prompt:
    """The contrastive prompt when there are exemplars (each with a measured speedup), else the
    first-round prompt. Exemplars are shown slowest first, so that the fastest comes last."""
    shown = sorted((e for e in exemplars if e.speedup is not None), key=lambda e: e.speedup)
    common = dict(task=task, device=device, feedback=feedback, allow_lower_precision=allow_lower_precision, atol=atol)
    if shown:
        return render(contrastive, exemplars=shown, **common)
    return render(first_round, **common)


def render_checker_prompt(
    task: Task, candidate: str, speedup: float, cases: Sequence[HackCase], *, best_so_far: float | None = None,
    template: str = CHECKER,
) -> Prompt:
    return render(template, task=task, candidate=candidate, speedup=speedup, cases=list(cases), best_so_far=best_so_far)


def _clip(text: str, limit: int = FEEDBACK_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + "\n[... truncated]"


# gcc/clang "file:line:col: error: ..." and nvcc "file(line): error: ..."
_COMPILER_ERROR = re.compile(r"^(?P<path>\S*?)(?P<file>[^/\s]+?)(?::\d+(?::\d+)?|\(\d+\)): (?:fatal )?error\b.*$", re.M)


def concise_error(text: str, max_lines: int = 8) -> str:
    """The compiler's own ``file:line:col: error: ...`` lines (paths shortened to the file name)
    when there are any, else the text itself; clipped."""
    lines = []
    for m in _COMPILER_ERROR.finditer(text):
        lines.append(m.group(0)[len(m.group("path")):])
        if len(lines) == max_lines:
            break
    return _clip("\n".join(lines) if lines else text)


def feedback_from_verdict(verdict: Verdict) -> str | None:
    """What the next prompt of the lineage says about a failed candidate (None when accepted).

    Concise on purpose: the judge's first compiler errors (``details.error``), the mismatch
    size, and the messages of its findings.
    """
    if verdict.accepted:
        return None
    error = verdict.details.error or ""
    heads = {
        "build_error": "It failed to build.",
        "runtime_error": "It raised an error when run.",
        "incorrect": "It ran, but its outputs did not match the reference"
        + (f" (max abs error {verdict.max_abs_error:.3g})." if verdict.max_abs_error is not None else "."),
        "rejected": "The judge rejected it.",
        "timeout": "It ran past the judge's time limit.",
    }
    lines = [heads.get(verdict.verdict, f"Verdict: {verdict.verdict}.")]
    seen: dict[str, int] = {}
    for f in verdict.findings:  # one line per finding id: the same check often fires in every trial
        seen[f.id] = seen.get(f.id, 0) + 1
    for f in verdict.findings:
        if f.severity == "warn" and verdict.verdict != "accepted" and any(g.severity == "reject" for g in verdict.findings):
            continue
        n = seen.pop(f.id, 0)
        if n:
            lines.append(f"- [{f.id}] {_clip(f.message, 240)}" + (f" (and {n - 1} more like it)" if n > 1 else ""))
    if error:
        lines.append("Error:\n```\n" + concise_error(str(error)) + "\n```")
    return "\n".join(lines)


def feedback_from_failure(reason: str) -> str:
    """Feedback for a response that could not be used at all (no code block, truncated, ...)."""
    return (
        f"The answer could not be used: {reason}. "
        "Answer with the three sections and exactly one complete ```python code block defining class ModelNew."
    )


def feedback_from_checker(reason: str) -> str:
    return "An adversarial review found that its speedup was not genuine (a reward hack):\n" + _clip(reason, 600)
