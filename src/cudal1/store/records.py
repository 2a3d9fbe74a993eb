"""Records the store keeps besides verdicts: candidates and runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..tasks.contract import source_hash


@dataclass(frozen=True)
class Candidate:
    """A proposed implementation of a task (a ``ModelNew`` source) and where it came from."""

    task_id: str
    source: str
    policy: str = "user"
    strategy: str = ""
    parents: tuple[int, ...] = ()
    prompt: str | None = None
    response: str | None = None
    template_version: str | None = None
    notes: str = ""
    meta: dict = field(default_factory=dict, compare=False)
    # Technique tags (e.g. "cuda-graph", "fusion"), filled by the explain layer.
    tags: tuple[str, ...] = field(default=(), compare=False)

    @property
    def source_hash(self) -> str:
        return source_hash(self.source)

    def to_json(self) -> dict:
        d = asdict(self)
        d["parents"] = list(self.parents)
        d["tags"] = list(self.tags)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Candidate":
        d = dict(d)
        d["parents"] = tuple(d.get("parents", ()))
        d["tags"] = tuple(d.get("tags", ()))
        return cls(**d)
