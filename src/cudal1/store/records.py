"""The records the store keeps and returns: candidates, judged attempts, runs, run items,
baselines and confirmed hacks. Frozen, with JSON round-trips (``to_json``/``from_json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..judge.verdict import Verdict
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


@dataclass(frozen=True)
class Attempt:
    """An earlier candidate of the task with the judge's verdict (and its store id, if any)."""

    source: str
    verdict: Verdict
    strategy: str = ""
    candidate_id: int | None = None

    @property
    def speedup(self) -> float | None:
        return self.verdict.speedup


def _from_fields(cls, d: dict, **converted):
    """``cls`` from a JSON dict: its own fields only, ``converted`` replacing raw values."""
    names = {f.name for f in fields(cls)}
    return cls(**{**{k: v for k, v in d.items() if k in names}, **converted})


@dataclass(frozen=True)
class Run:
    """One recorded run (an optimize, LLM search, bench or training stage).

    ``candidates``: how many distinct candidates it judged or reused (baselines excluded)."""

    id: int
    kind: str
    config: dict = field(compare=False)
    device: str
    torch: str
    host: str
    pid: int | None
    started: float
    finished: float | None
    status: str
    candidates: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Run":
        return _from_fields(cls, d, config=dict(d.get("config") or {}))


@dataclass(frozen=True)
class RunItem:
    """One verdict a run judged (``reused`` False) or linked from an earlier run (True).

    ``kind``: ``candidate`` or ``baseline:<kind>``."""

    task_id: str
    level: int
    size: str
    task_hash: str
    kind: str
    candidate_id: int
    candidate_hash: str
    policy: str
    strategy: str
    verdict_id: int
    reused: bool
    device_name: str
    config_key: str
    verdict: Verdict

    @property
    def is_baseline(self) -> bool:
        return self.kind.startswith("baseline:")

    def to_json(self) -> dict:
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "verdict"},
                "verdict": self.verdict.to_record()}

    @classmethod
    def from_json(cls, d: dict) -> "RunItem":
        return _from_fields(cls, d, verdict=Verdict.from_json(d["verdict"]))


@dataclass(frozen=True)
class Baseline:
    """A baseline measurement (``kind``: eager, compile, ...) of a task in a run."""

    task_id: str
    kind: str
    verdict: Verdict

    def to_json(self) -> dict:
        return {"task_id": self.task_id, "kind": self.kind, "verdict": self.verdict.to_record()}

    @classmethod
    def from_json(cls, d: dict) -> "Baseline":
        return cls(d["task_id"], d["kind"], Verdict.from_json(d["verdict"]))


@dataclass(frozen=True)
class Hack:
    """A confirmed reward hack in the case base (the adversarial checker's examples)."""

    id: int
    task_id: str
    source: str
    source_hash: str
    reason: str
    origin: str
    created: float

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Hack":
        return _from_fields(cls, d)
