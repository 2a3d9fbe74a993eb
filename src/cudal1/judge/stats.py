"""Statistics of a verdict's timings: the speedup's interval and each side's spread.

The speedup is the median reference call over the median candidate call, both over every timed
call. Its 95% interval comes from a two-level (hierarchical) bootstrap: rounds are drawn with
replacement, the same rounds for both sides (each round times the reference and the candidate
back to back, under the same conditions), then calls within each drawn round, separately per
side. Drawing rounds carries drift between rounds (a machine that got busier, clocks that moved)
into the interval; drawing calls carries the noise of single calls. With few rounds the interval
is wide rather than falsely confident, which is the point: a verdict whose interval contains 1.0
is not evidence of a speedup.

Resampling cannot see what differs between the two processes themselves (which cores and
memory they got, what each left in the caches): an exact copy of a reference, judged on a
2-core CPU, came out between 0.85x and 1.07x with bootstrap intervals that sometimes excluded
1.0. So the interval is widened by the judge's measured resolution between two processes
(``PROCESS_RESOLUTION``, per device kind; ``benchmarks/judge_noise.py`` measures it).
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 4000
LEVEL = 0.95
# How far apart two processes timing the same code can come out, relative (see the module doc).
# CPU: measured with benchmarks/judge_noise.py on exact copies (2-core VM, idle and with a core
# busy). CUDA: kernel times do not depend on the process; set from H200 figures, re-check there.
PROCESS_RESOLUTION = {"cpu": 0.25, "cuda": 0.02}


def widen(ci: tuple[float, float] | None, kind: str) -> tuple[float, float] | None:
    """``ci`` widened by the process-to-process resolution of ``kind`` (cpu or cuda)."""
    if ci is None:
        return None
    r = PROCESS_RESOLUTION[kind]
    return ci[0] / (1 + r), ci[1] * (1 + r)


def speedup_interval(ref_rounds: list[list[float]], cand_rounds: list[list[float]], level: float = LEVEL,
                     resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float] | None:
    """The ``level`` percentile interval of median(ref) / median(candidate); None without at
    least two calls per side. Each side's rounds hold the same number of calls (the judge's
    rounds do). Deterministic for the same times (``seed``)."""
    pairs = [(r, c) for r, c in zip(ref_rounds, cand_rounds) if len(r) and len(c)]
    if not pairs:
        return None
    ref, cand = (np.asarray([p[i] for p in pairs], float) for i in (0, 1))  # (rounds, calls)
    if ref.size < 2 or cand.size < 2:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(pairs), size=(resamples, len(pairs)))  # the same rounds for both sides
    ratios = np.median(_draw(rng, ref, picks), axis=1) / np.median(_draw(rng, cand, picks), axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def _draw(rng: np.random.Generator, times: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """For each resample (a row of ``picks``: the rounds drawn), the calls drawn with replacement
    within each drawn round, all in one row: (resamples, rounds * calls)."""
    calls = rng.integers(times.shape[1], size=(*picks.shape, times.shape[1]))
    return times[picks[..., None], calls].reshape(picks.shape[0], -1)


def cv(xs: list[float]) -> float | None:
    """Coefficient of variation (population standard deviation over mean)."""
    if len(xs) < 2:
        return None
    a = np.asarray(xs, float)
    m = float(a.mean())
    return float(a.std() / m) if m > 0 else None


def contains_one(ci: tuple[float, float] | None) -> bool:
    return ci is not None and ci[0] <= 1.0 <= ci[1]
