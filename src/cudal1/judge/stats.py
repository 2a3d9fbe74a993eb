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
    least two calls per side. Deterministic for the same times (``seed``)."""
    pairs = [(np.asarray(r, float), np.asarray(c, float)) for r, c in zip(ref_rounds, cand_rounds) if len(r) and len(c)]
    if not pairs or sum(len(r) for r, _ in pairs) < 2 or sum(len(c) for _, c in pairs) < 2:
        return None
    rng = np.random.default_rng(seed)
    n_rounds = len(pairs)
    picks = rng.integers(n_rounds, size=(resamples, n_rounds))
    ratios = np.empty(resamples)
    ref_draws = [_draw(rng, r, resamples) for r, _ in pairs]
    cand_draws = [_draw(rng, c, resamples) for _, c in pairs]
    for b in range(resamples):
        rows = picks[b]
        ref = np.concatenate([ref_draws[i][b] for i in rows])
        cand = np.concatenate([cand_draws[i][b] for i in rows])
        ratios[b] = np.median(ref) / np.median(cand)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def _draw(rng: np.random.Generator, xs: np.ndarray, resamples: int) -> np.ndarray:
    """``resamples`` bootstrap samples of one round's calls, one per row."""
    return xs[rng.integers(len(xs), size=(resamples, len(xs)))]


def cv(xs: list[float]) -> float | None:
    """Coefficient of variation (population standard deviation over mean)."""
    if len(xs) < 2:
        return None
    a = np.asarray(xs, float)
    m = float(a.mean())
    return float(a.std() / m) if m > 0 else None


def contains_one(ci: tuple[float, float] | None) -> bool:
    return ci is not None and ci[0] <= 1.0 <= ci[1]
