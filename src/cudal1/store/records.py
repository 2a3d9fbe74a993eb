"""The records the store keeps and returns: candidates, judged attempts, runs, run items,
baselines and confirmed hacks. Frozen, with JSON round-trips (``to_json``/``from_json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..judge.verdict import Verdict, faster_than_reference
from ..tasks.contract import source_hash

LOWER_PRECISION_IDS = ("lower-precision", "lower-precision-flags")


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

    @classmethod
    def from_proposal(cls, task_id: str, proposal, policy: str, meta: dict | None = None) -> "Candidate":
        """A policy's `Proposal` (policies/base.py, a layer below: not imported here) as the
        store keeps it, its components and precision in ``meta``."""
        p = proposal
        return cls(task_id=task_id, source=p.source, policy=policy, strategy=p.strategy, parents=p.parents,
                   prompt=p.prompt, response=p.response, template_version=p.template_version, notes=p.notes,
                   meta={"components": list(p.components), "lower_precision": p.lower_precision, **(meta or {})})

    @property
    def source_hash(self) -> str:
        return source_hash(self.source)

    @property
    def run_kind(self) -> str:
        """How a run lists this candidate's verdict: ``baseline:<kind>`` for a baseline, else ``candidate``."""
        return f"baseline:{self.strategy}" if self.policy == "baseline" else "candidate"

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
    """A judged candidate: its source and provenance with the judge's verdict (and its store id,
    if any). What a search tries, what policies see as history, what a judging batch returns.

    ``reused``: the verdict came from the store (the same source judged under the same task,
    size, device and judge settings) instead of being judged now."""

    source: str
    verdict: Verdict
    strategy: str = ""
    candidate_id: int | None = None
    policy: str = ""
    notes: str = ""
    components: tuple[str, ...] = ()
    lower_precision: bool = False
    reused: bool = False

    @classmethod
    def of(cls, candidate: Candidate, verdict: Verdict, candidate_id: int | None = None,
           reused: bool = False) -> "Attempt":
        meta = candidate.meta
        return cls(source=candidate.source, verdict=verdict, strategy=candidate.strategy, candidate_id=candidate_id,
                   policy=candidate.policy, notes=candidate.notes, components=tuple(meta.get("components", ())),
                   lower_precision=bool(meta.get("lower_precision")), reused=reused)

    @property
    def speedup(self) -> float | None:
        return self.verdict.speedup

    @property
    def faster(self) -> bool:
        """Faster than the reference beyond the noise (`faster_than_reference`)."""
        return faster_than_reference(self.verdict)

    @property
    def is_lower_precision(self) -> bool:
        return self.lower_precision or bool(self.verdict.details.lower_precision) or any(
            f.id in LOWER_PRECISION_IDS for f in self.verdict.findings)


def _from_fields(cls, d: dict, **converted):
    """``cls`` from a JSON dict: its own fields only, ``converted`` replacing raw values."""
    names = {f.name for f in fields(cls)}
    return cls(**{**{k: v for k, v in d.items() if k in names}, **converted})


def _json_with_verdict(record) -> dict:
    """A record's fields as JSON, its ``verdict`` as the store keeps it (`Verdict.to_record`)."""
    return {**{f.name: getattr(record, f.name) for f in fields(record) if f.name != "verdict"},
            "verdict": record.verdict.to_record()}


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
        return _json_with_verdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "RunItem":
        return _from_fields(cls, d, verdict=Verdict.from_json(d["verdict"]))


@dataclass(frozen=True)
class Baseline:
    """A baseline measurement (``kind``: eager, compile, ...) of a task in a run."""

    task_id: str
    kind: str
    verdict: Verdict

    # The same conversions as RunItem's: its fields, the verdict as the store keeps it.
    to_json = RunItem.to_json
    from_json = classmethod(RunItem.from_json.__func__)


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
