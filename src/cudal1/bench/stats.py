"""Suite statistics: pure functions over per-task results (no judge, no store).

Definitions (also in docs/bench.md):

- A task's *speedup* is the judge's: reference (eager) time / candidate time, given only when
  the candidate is accepted. Against baseline X it is ``speedup / speedup_X`` where
  ``speedup_X`` is the judge's speedup of baseline X on the same task; a baseline that was not
  accepted on a task (e.g. torch.compile failed) counts as eager there (1.0x), since eager is
  what a user would fall back to.
- **with fallback**: every task of the suite counts; a missing, failed or slower candidate
  counts as 1.0x (the user keeps the faster of the two programs).
- **raw**: accepted candidates only, their measured ratios as they are.
- **valid** = accepted; **faster** = accepted with ratio > 1.01 *and* the ratio's 95% interval
  wholly above 1.0 (significant). A verdict without an interval (stored before the judge gave
  one) never counts as faster; ``no_interval`` counts those among the accepted.
- A ratio's interval: against eager it is the judge's ``speedup_ci``. Against baseline X it is
  the candidate's interval divided by X's, their relative half-widths combined in quadrature on
  a log scale (the two were timed in separate evaluations, so independently); where X was not
  accepted (it counts as exactly 1.0x) the candidate's own interval.
- **fast_p** (KernelBench): share of *all* tasks whose candidate is accepted and whose ratio
  is greater than p. fast_0 is the share accepted. The same in both views.
- Percentiles interpolate linearly between order statistics (numpy's default).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..judge.verdict import Verdict

FAST_P = (0.0, 0.5, 0.8, 1.0, 1.5, 2.0)
FASTER_THAN = 1.01
VIEWS = ("fallback", "raw")
VIEW_LABELS = {"fallback": "with fallback (failed or slower = 1.0x)", "raw": "raw (accepted only)"}


@dataclass(frozen=True)
class TaskResult:
    """One task of a bench: the candidate's verdict (None when no candidate was given) and the
    baselines' verdicts by kind (``eager``, ``compile``, ...)."""

    task_id: str
    level: int
    verdict: Verdict | None
    baselines: dict[str, Verdict] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "missing" if self.verdict is None else self.verdict.verdict

    @property
    def accepted(self) -> bool:
        return self.verdict is not None and self.verdict.accepted

    def ratio(self, against: str = "eager") -> float | None:
        """The candidate's speedup against a baseline, or None when it was not accepted."""
        if not self.accepted:
            return None
        speedup = float(self.verdict.speedup)
        if against == "eager":
            return speedup
        return speedup / baseline_speedup(self.baselines.get(against))

    def ratio_interval(self, against: str = "eager") -> tuple[float, float] | None:
        """The 95% interval of `ratio` (see the module doc); None when not accepted or when the
        candidate or an accepted baseline has no interval (verdicts stored before intervals)."""
        if not self.accepted or self.verdict.speedup_ci is None:
            return None
        ci = tuple(self.verdict.speedup_ci)
        if against == "eager":
            return ci
        base = self.baselines.get(against)
        if base is None or not base.accepted or not base.speedup:
            return ci  # the baseline counts as exactly 1.0x: nothing to divide by
        if base.speedup_ci is None:
            return None
        return divide_intervals(float(self.verdict.speedup), ci, float(base.speedup), tuple(base.speedup_ci))

    def significant(self, against: str = "eager") -> bool:
        """Faster than the baseline beyond the noise: the ratio's whole interval lies above 1.0."""
        ci = self.ratio_interval(against)
        return ci is not None and ci[0] > 1.0


def divide_intervals(x: float, x_ci: tuple[float, float], y: float, y_ci: tuple[float, float]) -> tuple[float, float]:
    """An interval for x / y from independent intervals of x and y: on a log scale the lower
    half-width of x and the upper one of y (and the other way round) add in quadrature."""
    def half(a: float, b: float) -> float:
        return abs(math.log(a / b)) if a > 0 and b > 0 else math.inf

    ratio = x / y
    low = math.hypot(half(x, x_ci[0]), half(y_ci[1], y))
    high = math.hypot(half(x_ci[1], x), half(y, y_ci[0]))
    return ratio * math.exp(-low), ratio * math.exp(high)


def relative_halfwidth(value: float, ci: tuple[float, float]) -> float:
    """Half the interval's width over the value: 0.05 for ``2.0 [1.9-2.1]``."""
    return (ci[1] - ci[0]) / 2 / value if value else math.inf


def baseline_speedup(verdict: Verdict | None) -> float:
    """The judge's speedup of a baseline over eager; 1.0 when it was not accepted (fallback)."""
    if verdict is None or not verdict.accepted or not verdict.speedup:
        return 1.0
    return float(verdict.speedup)


@dataclass(frozen=True)
class Summary:
    """Statistics of one group of tasks (a level or all) in one view against one baseline."""

    group: str  # "level1", ..., or "all"
    view: str  # "fallback" | "raw"
    against: str  # "eager" or a baseline kind
    tasks: int
    valid: int
    faster: int  # accepted, > 1.01x and significant (95% interval above 1.0)
    no_interval: int  # accepted without an interval: never counted as faster
    mean: float | None
    median: float | None
    p25: float | None
    p75: float | None
    max: float | None
    geomean: float | None
    fast_p: dict[str, float]

    def to_json(self) -> dict:
        return asdict(self)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def geometric_mean(values: list[float]) -> float | None:
    if not values or any(v <= 0 for v in values):
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def fast_p(ratios: list[float | None], p: float) -> float:
    """Share of all tasks (None = not accepted) whose ratio is greater than p."""
    if not ratios:
        return 0.0
    return sum(1 for r in ratios if r is not None and r > p) / len(ratios)


def view_values(ratios: list[float | None], view: str) -> list[float]:
    """The speedups a view averages: fallback maps None and < 1.0 to 1.0; raw drops None."""
    if view == "fallback":
        return [max(r, 1.0) if r is not None else 1.0 for r in ratios]
    if view == "raw":
        return [r for r in ratios if r is not None]
    raise ValueError(f"unknown view {view!r}: use one of {VIEWS}")


def summarize(ratios: list[float | None], group: str = "all", view: str = "fallback", against: str = "eager",
              intervals: list[tuple[float, float] | None] | None = None) -> Summary:
    """Statistics of a list of per-task ratios (None for a task whose candidate was not accepted)
    and their 95% intervals (same order; None, or no list, where there is none)."""
    values = view_values(ratios, view)
    intervals = list(intervals) if intervals is not None else [None] * len(ratios)
    if len(intervals) != len(ratios):
        raise ValueError(f"{len(intervals)} intervals for {len(ratios)} ratios: give one (or None) per ratio")
    pairs = [(r, ci) for r, ci in zip(ratios, intervals) if r is not None]
    return Summary(
        group=group, view=view, against=against,
        tasks=len(ratios),
        valid=len(pairs),
        faster=sum(1 for r, ci in pairs if r > FASTER_THAN and ci is not None and ci[0] > 1.0),
        no_interval=sum(1 for _, ci in pairs if ci is None),
        mean=sum(values) / len(values) if values else None,
        median=percentile(values, 50),
        p25=percentile(values, 25),
        p75=percentile(values, 75),
        max=max(values) if values else None,
        geomean=geometric_mean(values),
        fast_p={_p_key(p): fast_p(ratios, p) for p in FAST_P},
    )


def _p_key(p: float) -> str:
    return f"fast_{p:g}"


def bench_statistics(results: list[TaskResult], baselines: tuple[str, ...] | list[str] = ()) -> list[Summary]:
    """Per level and overall, both views, against eager and every baseline kind given
    (``eager`` itself is the judge's speedup and need not be listed)."""
    against = ["eager"] + [b for b in baselines if b != "eager"]
    groups: dict[str, list[TaskResult]] = {}
    for r in sorted(results, key=lambda r: r.level):
        groups.setdefault(f"level{r.level}", []).append(r)
    groups["all"] = list(results)
    out = []
    for kind in against:
        for view in VIEWS:
            for name, rs in groups.items():
                out.append(summarize([r.ratio(kind) for r in rs], group=name, view=view, against=kind,
                                     intervals=[r.ratio_interval(kind) for r in rs]))
    return out


def select(summaries: list[Summary], view: str | None = None, against: str | None = None, group: str | None = None) -> list[Summary]:
    return [s for s in summaries if (view is None or s.view == view) and (against is None or s.against == against)
            and (group is None or s.group == group)]


def status_counts(results: list[TaskResult]) -> dict[str, int]:
    """How many tasks ended in each verdict (plus ``missing``)."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts
