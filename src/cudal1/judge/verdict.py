"""The judge's results: `Finding` and `Verdict`, frozen and JSON round-trippable.

The JSON form of a Verdict has exactly the fields of the CLI's ``--json`` output (see
``VERDICT_FIELDS``); extra detail (`VerdictDetails`) lives under ``details`` in `to_record` only, which the
store keeps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

VERDICTS = ("accepted", "incorrect", "rejected", "build_error", "runtime_error", "timeout")
SEVERITIES = ("reject", "warn")
NOT_SIGNIFICANT = "speedup-not-significant"  # the judge's finding: the speedup's interval contains 1.0
VERDICT_FIELDS = (
    "verdict", "correct", "speedup", "ref_ms", "candidate_ms", "max_abs_error", "findings",
    "device", "torch", "kernels", "build_s", "eval_s", "speedup_ci", "ref_cv", "candidate_cv", "floor_ms",
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


# The details the judge records, by name; anything else a stored row holds (older or newer
# judges, callers that added keys) stays in `VerdictDetails.extra`.
@dataclass(frozen=True)
class VerdictDetails:
    """What the judge records beside a verdict's contract fields: kept by the store, shown by
    ``cudal1 eval``, not part of the ``--json`` output. ``None`` means not recorded (the
    evaluation stopped before that stage, or an older judge did not record it)."""

    # the evaluation
    error: str | None = None  # the build's or the candidate process's error text
    sandbox: str | None = None  # the level asked for (auto resolved)
    sandbox_applied: str | None = None  # what the candidate's sandbox really did
    threads: int | None = None
    device_used: str | None = None
    lower_precision: bool | None = None  # accepted only because lower precision was allowed
    process_prestarted: bool | None = None
    reference_process_reused: bool | None = None
    stage_s: dict[str, float] | None = None  # seconds per stage
    strict_tol_ok: bool | None = None  # outputs also within strict_tol
    # the machine and the timing
    pace_ms: float | None = None  # the CPU's pace at the start, and the best seen (judge/pace.py)
    pace_best_ms: float | None = None
    ref_ms: float | None = None
    candidate_ms: float | None = None
    floor_ms: float | None = None
    ref_times_ms: tuple[float, ...] | None = None
    candidate_times_ms: tuple[float, ...] | None = None
    ref_spread: dict | None = None
    candidate_spread: dict | None = None  # iqr_over_median, ...
    round_medians: dict | None = None
    extra_rounds: int | None = None
    late_calls: int | None = None
    side_stream_lag_ms: float | None = None
    wallclock: dict | None = None  # the parent's clock check
    remeasured: dict | None = None  # device, speedup, ref_ms, candidate_ms of the fresh measurement
    ref_kernels: tuple[dict, ...] | None = None  # the reference's kernels (name, share, calls)
    extra: dict = field(default_factory=dict)  # keys not named above, kept as they were

    def to_json(self) -> dict:
        """The recorded keys only (what the store's ``details`` column holds), ``extra`` merged in."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return {**self.extra, **out}

    @classmethod
    def from_json(cls, d: dict | None) -> "VerdictDetails":
        """From a ``details`` mapping (a stored row of any schema version): unknown keys go to ``extra``."""
        d = d or {}
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        return cls(**kwargs, extra={k: v for k, v in d.items() if k not in known})


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
    # 95% interval of the speedup from the timed rounds (see judge/stats.py), the coefficient of
    # variation of each side's call times, and the judge's own floor: the time it reports for an
    # empty forward, below which differences between times mean nothing.
    speedup_ci: tuple[float, float] | None = None
    ref_cv: float | None = None
    candidate_cv: float | None = None
    floor_ms: float | None = None
    # Not part of the --json contract; kept by the store and shown by the CLI.
    details: VerdictDetails = field(default_factory=VerdictDetails, compare=False)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.speedup is not None and self.verdict != "accepted":
            raise ValueError("speedup is only given for accepted candidates")
        if not isinstance(self.details, VerdictDetails):  # a mapping, as stored rows and older callers give it
            object.__setattr__(self, "details", VerdictDetails.from_json(self.details))

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"

    @property
    def significant(self) -> bool:
        """Faster than the reference beyond the noise: the whole interval lies above 1.0."""
        return self.accepted and self.speedup_ci is not None and self.speedup_ci[0] > 1.0

    def speedup_text(self) -> str:
        """``2.31x [2.20-2.45]``: the speedup with its interval, or '' when there is none."""
        if self.speedup is None:
            return ""
        ci = f" [{self.speedup_ci[0]:.2f}-{self.speedup_ci[1]:.2f}]" if self.speedup_ci else ""
        return f"{self.speedup:.2f}x{ci}"

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
            "speedup_ci": list(self.speedup_ci) if self.speedup_ci else None,
            "ref_cv": self.ref_cv,
            "candidate_cv": self.candidate_cv,
            "floor_ms": self.floor_ms,
        }

    def to_record(self) -> dict:
        """``to_json`` plus ``details`` (timing spread, sandbox level, 1e-4 result, ...)."""
        return {**self.to_json(), "details": self.details.to_json()}

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
            speedup_ci=tuple(d["speedup_ci"]) if d.get("speedup_ci") else None,
            ref_cv=d.get("ref_cv"),
            candidate_cv=d.get("candidate_cv"),
            floor_ms=d.get("floor_ms"),
            details=VerdictDetails.from_json(d.get("details")),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_record())

    @classmethod
    def loads(cls, s: str) -> "Verdict":
        return cls.from_json(json.loads(s))


def faster_than_reference(verdict: Verdict) -> bool:
    """Whether the judge showed the candidate faster than the reference beyond the timing noise.

    That is `Verdict.significant`: accepted, and the whole 95% interval of the speedup above
    1.0 (a candidate at 1.04x [0.97-1.11] may be no faster at all, and writing it as the best
    would hand the user a rewrite for nothing). A verdict without an interval (``speedup_ci``
    None: judged before the judge measured intervals, or read back from a store that does not
    keep them) falls back to its point speedup above 1.0, the rule it was judged under; refusing
    it would discard a measured result that only a full re-evaluation could replace. Its
    ``speedup-not-significant`` finding, which the judge adds when the interval contains 1.0 and
    which the store keeps, still counts.
    """
    if verdict.speedup_ci is None:
        return (verdict.accepted and verdict.speedup is not None and verdict.speedup > 1.0
                and NOT_SIGNIFICANT not in verdict.finding_ids())
    return verdict.significant
