"""`LLMPolicy`: prompts → completions → parsed `Proposal`s.

The search loop plans each sample (its exemplars and the feedback for its lineage) and calls
`LLMPolicy.sample`, which keeps malformed answers (with their reason) so they can be stored.
`LLMPolicy.propose` implements the plain `Policy` protocol for other callers: it shows the
fastest accepted attempts of ``context.history`` as exemplars and drops malformed answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ...tasks.contract import Task
from ..base import Attempt, Context, Proposal
from .backends import Completion, LLMBackend
from .parse import ParsedResponse, parse_response
from .prompts import CONTRASTIVE, FIRST_ROUND, Prompt, render_search_prompt


@dataclass(frozen=True)
class SamplePlan:
    """What one sample's prompt shows: exemplars (with speedups) and feedback for its lineage."""

    exemplars: tuple[Attempt, ...] = ()
    feedback: str | None = None
    lineage: int = 0

    @property
    def parents(self) -> tuple[int, ...]:
        return tuple(a.candidate_id for a in self.exemplars if a.candidate_id is not None)


@dataclass(frozen=True)
class LLMSample:
    """One sampled answer: the prompt, the completion, the parse, and the proposal built from it."""

    plan: SamplePlan
    prompt: Prompt
    completion: Completion
    parsed: ParsedResponse
    proposal: Proposal

    @property
    def failure(self) -> str | None:
        """Why nothing can be judged ('' source): the request failed or the answer is malformed."""
        if not self.completion.ok:
            return f"request failed: {self.completion.error}"
        return self.parsed.failure


@dataclass
class LLMPolicy:
    backend: LLMBackend
    device: str = "cuda"
    allow_lower_precision: bool = False
    atol: float = 1e-2
    exemplars: int = 2
    contrastive_template: str = CONTRASTIVE
    first_round_template: str = FIRST_ROUND
    name: str = field(default="llm")

    def render(self, task: Task, plan: SamplePlan) -> Prompt:
        return render_search_prompt(
            task, plan.exemplars, device=self.device, feedback=plan.feedback,
            allow_lower_precision=self.allow_lower_precision, atol=self.atol,
            contrastive=self.contrastive_template, first_round=self.first_round_template,
        )

    def sample(self, task: Task, plans: Sequence[SamplePlan]) -> list[LLMSample]:
        """One completion per plan (in parallel where the backend allows), in plan order."""
        prompts = [self.render(task, p) for p in plans]
        completions = self.backend.complete_many([p.messages() for p in prompts])
        out = []
        for plan, prompt, completion in zip(plans, prompts, completions, strict=True):
            if completion.ok:
                parsed = parse_response(completion.text, completion.finish_reason)
            else:
                parsed = ParsedResponse(source="", failure=f"request failed: {completion.error}")
            strategy = "llm-contrastive" if plan.exemplars else "llm-first-round"
            notes = parsed.design[:2000] if parsed.design else ""
            proposal = Proposal(
                source=parsed.source if parsed.ok else "", strategy=strategy, notes=notes, parents=plan.parents,
                prompt=prompt.text, response=completion.text, template_version=prompt.template_version,
            )  # lower_precision stays False: whether it computed in lower precision is the judge's finding
            out.append(LLMSample(plan, prompt, completion, parsed, proposal))
        return out

    def propose(self, task: Task, context: Context) -> list[Proposal]:
        accepted = sorted((a for a in context.history if a.verdict.accepted and a.speedup),
                          key=lambda a: a.speedup, reverse=True)
        plan = SamplePlan(exemplars=tuple(accepted[: self.exemplars]))
        samples = self.sample(task, [plan] * max(1, context.budget))
        return [s.proposal for s in samples if s.failure is None]
