"""Written-out normalizations -> ``F.layer_norm`` / ``F.rms_norm`` (one fused pass pair instead
of five or six elementwise and reduction passes).

Standard: **reassociated** -- equal in real arithmetic; in float32 the statistics are summed in
another order (torch's norms use their own accumulation), so values agree within a few ulps of
the normalized output; rows with +-inf or NaN give NaN in both. They can differ when a square
overflows float32 in one form only (|x - mean| > 1.8e19), as any change of summation order can.

Instance normalization written out (mean and variance over H, W of NCHW) is a layer norm over
the trailing dims and is read as one; group normalization written out over a grouped view
(``x.view(N, G, -1)``) is a layer norm of that view. The epsilon must sit inside the square
root, the variance must be the biased one (``unbiased=False`` / ``correction=0``, or the mean
of squared deviations): ``x.var()`` alone is unbiased and is not a layer norm.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import fx

from .analysis import node_shape
from .formulas import Formula, Match, Trailing
from .graph_utils import arg
from .patterns import binary, commuted, dims_of, float_input, is_call, keepdim_reduction, number, single_use, trailing, unary


def _root_of(n, gm):
    """(numerator, sum node under the root) for ``a / sqrt(s)`` or ``a * rsqrt(s)``."""
    ops = binary(n, gm, "truediv")
    if ops is not None:
        root = unary(ops[1], gm, "sqrt")
        return (ops[0], ops[1], root) if root is not None else None
    for a, r in commuted(n, gm, "mul"):
        root = unary(r, gm, "rsqrt")
        if root is not None:
            return a, r, root
    return None


def _plus_eps(s, gm):
    """(value, eps) for ``value + eps`` with eps a non-negative number."""
    for v, eps in commuted(s, gm, "add"):
        if number(eps) is not None and number(eps) >= 0 and isinstance(v, fx.Node):
            return v, number(eps)
    return None


def _square_of(q, gm, x) -> bool:
    if is_call(q, gm, "pow") and q.op != "call_module" and len(q.args) == 2 and not q.kwargs:
        return q.args[0] is x and number(q.args[1]) == 2.0
    if unary(q, gm, "square") is x:
        return True
    ops = binary(q, gm, "mul")
    return ops is not None and ops[0] is x and ops[1] is x


def written_rms(n, gm):
    """(x, dims, eps, nodes the formula consists of, last first) when ``n`` is
    ``x / sqrt(mean(x**2, dims, keepdim=True) + eps)`` or ``x * rsqrt(...)`` (x**2 as pow,
    x * x or square) and every intermediate value is used only inside it."""
    found = _root_of(n, gm)
    if found is None:
        return None
    x, r, s = found
    if not single_use(r) or not single_use(s) or not isinstance(x, fx.Node):
        return None
    pe = _plus_eps(s, gm)
    if pe is None or not single_use(pe[0]):
        return None
    mean, eps = pe
    sq = mean.args[0] if isinstance(mean, fx.Node) and mean.args else None
    dims = keepdim_reduction(mean, gm, "mean", sq)
    if dims is None or not single_use(sq) or not _square_of(sq, gm, x) or not float_input(x):
        return None
    return x, dims, eps, [n, r, s, mean, sq]


def _biased_variance(v, gm, x, d, dims) -> bool:
    """``v`` is the biased variance of x over dims (kept): ``x.var(dims, keepdim=True,
    unbiased=False | correction=0)`` or the mean of ``d``**2 with d = x - mean."""
    if is_call(v, gm, "var") and v.op != "call_module" and v.args and v.args[0] is x:
        if len(v.args) > 2 or set(v.kwargs) - {"dim", "keepdim", "unbiased", "correction"}:
            return False
        biased = v.kwargs.get("unbiased") is False or number(v.kwargs.get("correction")) == 0.0
        return biased and arg(v, 2, "keepdim", False) is True and dims_of(v, gm) == dims
    sq = v.args[0] if isinstance(v, fx.Node) and v.args else None
    return keepdim_reduction(v, gm, "mean", sq) == dims and single_use(sq) and _square_of(sq, gm, d)


def layer_norm(n, gm) -> Match | None:
    """``(x - mean) / sqrt(var + eps)`` or ``(x - mean) * rsqrt(var + eps)``, mean and the biased
    variance over the trailing dims (kept) -> ``F.layer_norm(x, x.shape[-k:], eps=eps)``."""
    found = _root_of(n, gm)
    if found is None:
        return None
    d, r, s = found
    ops = binary(d, gm, "sub")
    if ops is None or not single_use(r) or not single_use(s):
        return None
    x, mu = ops
    dims = keepdim_reduction(mu, gm, "mean", x)
    shape = node_shape(x)
    if dims is None or shape is None or not trailing(dims, len(shape)) or not single_use(mu) or not float_input(x):
        return None
    pe = _plus_eps(s, gm)
    if pe is None or not single_use(pe[0]) or not _biased_variance(pe[0], gm, x, d, dims):
        return None
    users = {n} if is_call(pe[0], gm, "var") else {n, pe[0].args[0]}
    if set(d.users) != users:
        return None
    return Match(F.layer_norm, (x, Trailing(x, len(dims)), None, None, pe[1]),
                 detail=f"{n.name} = (x - mean) / sqrt(var + eps) is layer_norm({x.name}) over its last {len(dims)} dim(s)")


def rms_norm(n, gm) -> Match | None:
    """``x / sqrt(mean(x**2) + eps)`` over the trailing dims (kept) -> ``F.rms_norm(x,
    x.shape[-k:], eps=eps)``. (torch computes x * rsqrt(mean(x**2) + eps))"""
    found = written_rms(n, gm)
    if found is None:
        return None
    x, dims, eps, _ = found
    if not trailing(dims, len(node_shape(x))):
        return None
    return Match(F.rms_norm, (x, Trailing(x, len(dims)), None, eps),
                 detail=f"{n.name} = x / sqrt(mean(x^2) + eps) is rms_norm({x.name}) over its last {len(dims)} dim(s)")


def _normalized(n, gm):
    """(function, x, normalized-shape argument, eps) for a ``F.layer_norm``/``F.rms_norm`` call
    without an affine weight."""
    if not (isinstance(n, fx.Node) and n.op == "call_function" and n.target in (F.layer_norm, F.rms_norm)):
        return None
    if n.target is F.layer_norm and len(n.args) == 5 and n.args[2] is None and n.args[3] is None and not n.kwargs:
        return F.layer_norm, n.args[0], n.args[1], n.args[4]
    if n.target is F.rms_norm and len(n.args) == 4 and n.args[2] is None and not n.kwargs:
        return F.rms_norm, n.args[0], n.args[1], n.args[3]
    return None


def _weight_like(w, n) -> bool:
    """``w`` is a parameter or buffer shaped exactly like the normalized dims of ``n``'s input."""
    shape, ws = node_shape(n), node_shape(w)
    return isinstance(w, fx.Node) and w.op == "get_attr" and ws is not None and shape is not None \
        and 0 < len(ws) <= len(shape) and tuple(shape[len(shape) - len(ws):]) == ws


def norm_affine(n, gm) -> Match | None:
    """``norm * w + b`` or ``norm * w`` after a weightless ``F.layer_norm``/``F.rms_norm``, with
    w and b parameters shaped like the normalized dims -> the norm with ``weight=w, bias=b``.
    (same formula: torch applies y * w + b inside the norm's pass)"""
    def split(v):
        for norm, w in commuted(v, gm, "mul"):
            info = _normalized(norm, gm) if single_use(norm) else None
            if info is not None and _weight_like(w, norm) and node_shape(w) == _trailing_shape(norm):
                return info, w
        return None

    for p, b in commuted(n, gm, "add"):
        found = split(p) if single_use(p) else None
        if found is not None and found[0][0] is F.layer_norm and _weight_like(b, p) and node_shape(b) == node_shape(found[1]):
            (fn, x, ns, eps), w = found
            return Match(F.layer_norm, (x, ns, w, b, eps), detail=f"{n.name}: layer_norm's affine {w.target}, {b.target} folded in")
    found = split(n)
    if found is None or any(_weight_like(b, n) for u in n.users for _, b in commuted(u, gm, "add")):
        return None  # the add after it folds in with the bias
    (fn, x, ns, eps), w = found
    args = (x, ns, w, None, eps) if fn is F.layer_norm else (x, ns, w, eps)
    return Match(fn, args, detail=f"{n.name}: {fn.__name__}'s weight {w.target} folded in")


def _trailing_shape(norm):
    shape = node_shape(norm)
    ns = norm.args[1]
    if isinstance(ns, fx.Node) and ns.op == "call_function" and isinstance(ns.args[1], slice) and shape is not None:
        return tuple(shape[ns.args[1].start:])
    if isinstance(ns, (list, tuple)) and shape is not None:
        return tuple(shape[len(shape) - len(ns):])
    return None


NORMS = (
    Formula("fused-layer-norm", layer_norm),
    Formula("fused-rms-norm", rms_norm),
    Formula("norm-affine", norm_affine),
)
