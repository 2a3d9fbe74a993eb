"""Written-out softmax, log_softmax and logsumexp -> torch's fused row functions.

Only the max-subtracted forms are read: ``exp(x) / exp(x).sum()`` is not softmax in float32
(a row whose sum overflows gives 0 everywhere where softmax gives numbers), and
``log(softmax(x))`` gives -inf where log_softmax gives a number; both are left alone.
"""

from __future__ import annotations

import torch
from torch import fx

from .formulas import Formula, Match
from .patterns import binary, commuted, float_input, keepdim_reduction, row_max, single_use, unary


def _shifted(d, gm):
    """(x, dims) when ``d`` is x - max(x over dims, keepdim)."""
    ops = binary(d, gm, "sub")
    if ops is None:
        return None
    x, m = ops
    found = row_max(m, gm) if isinstance(m, fx.Node) else None
    if found is None or found[0] is not x or not float_input(x):
        return None
    return x, found[1], m


def _sum_of_exp(s, gm):
    """(d, dims, e) when ``s`` is sum(exp(d) over dims, keepdim)."""
    e = s.args[0] if isinstance(s, fx.Node) and s.args else None
    dims = keepdim_reduction(s, gm, "sum", e)
    d = unary(e, gm, "exp") if dims is not None else None
    return None if d is None else (d, dims, e)


def softmax(n, gm) -> Match | None:
    """``e / e.sum(d, keepdim=True)`` with ``e = exp(x - x.max(d, keepdim=True))`` (max as
    amax, max(..)[0] or .values) -> ``torch.softmax(x, d)``. (same function: torch computes
    this very sequence; a row with +inf gives NaN in both (inf - inf), a row of -inf too)"""
    ops = binary(n, gm, "truediv")
    if ops is None:
        return None
    e, s = ops
    found = _sum_of_exp(s, gm) if single_use(s) else None
    if found is None or found[2] is not e or set(e.users) != {n, s}:
        return None
    d, dims, _ = found
    shifted = _shifted(d, gm) if single_use(d) else None
    if shifted is None or shifted[1] != dims or len(dims) != 1 or not single_use(shifted[2]):
        return None
    x = shifted[0]
    return Match(torch.softmax, (x, dims[0]), detail=f"{n.name} = exp(x - max) / sum is softmax({x.name}, {dims[0]})")


def log_softmax(n, gm) -> Match | None:
    """``(x - m) - log(exp(x - m).sum(d, keepdim=True))`` with m the max over d (kept) ->
    ``torch.log_softmax(x, d)``. (same function: torch's sequence; +inf in a row gives NaN in
    both)"""
    ops = binary(n, gm, "sub")
    if ops is None:
        return None
    d, lg = ops
    s = unary(lg, gm, "log") if single_use(lg) else None
    found = _sum_of_exp(s, gm) if single_use(s) else None
    if found is None or found[0] is not d or not single_use(found[2]) or set(d.users) != {n, found[2]}:
        return None
    shifted = _shifted(d, gm)
    if shifted is None or shifted[1] != found[1] or len(found[1]) != 1 or not single_use(shifted[2]):
        return None
    x, dims = shifted[0], found[1]
    return Match(torch.log_softmax, (x, dims[0]), detail=f"{n.name} = (x - max) - log(sum exp) is log_softmax({x.name}, {dims[0]})")


def logsumexp(n, gm) -> Match | None:
    """``m + log(exp(x - m).sum(dims, keepdim=True))`` with m the max over dims (kept) ->
    ``torch.logsumexp(x, dims, keepdim=True)``. (NaN-relaxed: torch special-cases an
    infinite row max, giving +inf for a row with +inf and -inf for a row of -inf, where the
    written form gives NaN (inf - inf); finite rows: the same sequence)"""
    for m, lg in commuted(n, gm, "add"):
        s = unary(lg, gm, "log") if single_use(lg) else None
        found = _sum_of_exp(s, gm) if single_use(s) else None
        if found is None or not single_use(found[2]) or not single_use(found[0]):
            continue
        shifted = _shifted(found[0], gm)
        if shifted is None or shifted[2] is not m or shifted[1] != found[1] or set(m.users) != {n, found[0]}:
            continue
        x, dims = shifted[0], found[1]
        return Match(torch.logsumexp, (x, list(dims)), {"keepdim": True}, nan_relaxed=True,
                     detail=f"{n.name} = max + log(sum exp(x - max)) is logsumexp({x.name}, {list(dims)})")
    return None


ROWWISE = (
    Formula("fused-softmax", softmax),
    Formula("fused-log-softmax", log_softmax),
    Formula("fused-logsumexp", logsumexp),
)
