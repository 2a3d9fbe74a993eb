"""The judge's results: `Finding` and `Verdict`, frozen and JSON round-trippable.

The JSON form of a Verdict has exactly the fields of the CLI's ``--json`` output (see
``VERDICT_FIELDS``); extra detail lives under ``details`` in `to_record` only, which the
store keeps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

VERDICTS = ("accepted", "incorrect", "rejected", "build_error", "runtime_error", "timeout")
SEVERITIES = ("reject", "warn")
VERDICT_FIELDS = (
    "verdict", "correct", "speedup", "ref_ms", "candidate_ms", "max_abs_error", "findings",
    "device", "torch", "kernels", "build_s", "eval_s",
)


@dataclass(frozen=True)
class Finding:
    """One thing the judge noticed. ``id`` is a stable catalogue id (see docs/findings.md)."""

    id: str
    severity: str
    message: str

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Finding":
        return cls(id=d["id"], severity=d["severity"], message=d["message"])


@dataclass(frozen=True)
class KernelShare:
    """A GPU kernel the candidate launched, with its share of the candidate's GPU time."""

    name: str
    share: float
    calls: int = 0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    correct: bool
    speedup: float | None
    ref_ms: float | None
    candidate_ms: float | None
    max_abs_error: float | None
    findings: tuple[Finding, ...]
    device: str
    torch: str
    kernels: tuple[KernelShare, ...] = ()
    build_s: float | None = None
    eval_s: float | None = None
    # Not part of the --json contract; kept by the store and shown by the CLI.
    details: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.speedup is not None and self.verdict != "accepted":
            raise ValueError("speedup is only given for accepted candidates")

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"

    def finding_ids(self) -> list[str]:
        return [f.id for f in self.findings]

    def to_json(self) -> dict:
        """The CLI ``--json`` object: exactly ``VERDICT_FIELDS``."""
        return {
            "verdict": self.verdict,
            "correct": self.correct,
            "speedup": self.speedup,
            "ref_ms": self.ref_ms,
            "candidate_ms": self.candidate_ms,
            "max_abs_error": self.max_abs_error,
            "findings": [f.to_json() for f in self.findings],
            "device": self.device,
            "torch": self.torch,
            "kernels": [k.to_json() for k in self.kernels],
            "build_s": self.build_s,
            "eval_s": self.eval_s,
        }

    def to_record(self) -> dict:
        """``to_json`` plus ``details`` (timing spread, sandbox level, 1e-4 result, ...)."""
        return {**self.to_json(), "details": self.details}

    @classmethod
    def from_json(cls, d: dict) -> "Verdict":
        return cls(
            verdict=d["verdict"],
            correct=bool(d["correct"]),
            speedup=d.get("speedup"),
            ref_ms=d.get("ref_ms"),
            candidate_ms=d.get("candidate_ms"),
            max_abs_error=d.get("max_abs_error"),
            findings=tuple(Finding.from_json(f) for f in d.get("findings", [])),
            device=d.get("device", ""),
            torch=d.get("torch", ""),
            kernels=tuple(KernelShare(**k) for k in d.get("kernels", [])),
            build_s=d.get("build_s"),
            eval_s=d.get("eval_s"),
            details=d.get("details", {}) or {},
        )

    def dumps(self) -> str:
        return json.dumps(self.to_record())

    @classmethod
    def loads(cls, s: str) -> "Verdict":
        return cls.from_json(json.loads(s))
