"""The policy interface shared by the LLM-free optimizer and LLM policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..store.records import Attempt
from ..tasks.contract import Task


@dataclass(frozen=True)
class Proposal:
    """One candidate a policy proposes: a complete ``ModelNew`` source plus provenance."""

    source: str
    strategy: str
    notes: str = ""
    parents: tuple[int, ...] = ()
    prompt: str | None = None
    response: str | None = None
    template_version: str | None = None
    # Strategies the optimizer composed into this source, in order (for ablations).
    components: tuple[str, ...] = ()
    lower_precision: bool = False


@dataclass
class Context:
    """What a policy may look at: earlier attempts for this task, device and options."""

    device: str = "cpu"
    history: list[Attempt] = field(default_factory=list)
    allow_lower_precision: bool = False
    budget: int = 16
    reference_ms: float | None = None  # the judge's time for the reference on this device and size, once known


__all__ = ["Attempt", "Context", "Policy", "Proposal"]


class Policy(Protocol):
    name: str

    def propose(self, task: Task, context: Context) -> list[Proposal]: ...
