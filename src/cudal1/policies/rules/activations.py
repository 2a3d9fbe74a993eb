"""Written-out activations -> the fused torch function (one pass instead of one per operator).

Standard of every rule here, unless it says otherwise: **same function** -- the library
function computes the same mathematical function with the same special values (tested at
+-inf, NaN, +-1e30, 0); finite results differ only by the rounding of a different evaluation
order, a few float32 ulps. The checks at special values are in tests/test_rules_library.py;
where torch's CPU kernel deviates (``F.gelu`` turns +inf into NaN), the rule says how the
rewrite keeps the written form's value.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.nn.functional as F
from torch import fx

from .formulas import Formula, Match
from .graph_utils import arg, kind, module_of
from .patterns import close, commuted, float_input, is_call, is_product_of, number, product, single_use, softplus_input, unary

SQRT1_2 = 1.0 / math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def silu(n, gm) -> Match | None:
    """``x * sigmoid(x)`` (either order) -> ``F.silu(x)``. (same function)

    At +inf both give inf; at -inf both give NaN (-inf * 0 and -inf / inf); NaN stays NaN."""
    for x, s in commuted(n, gm, "mul"):
        if single_use(s) and unary(s, gm, "sigmoid") is x and float_input(x):
            return Match(F.silu, (x,), detail=f"{n.name} = x * sigmoid(x) is silu({x.name})")
    return None


def mish(n, gm) -> Match | None:
    """``x * tanh(softplus(x))`` (softplus written out as log1p(exp(x)) or log(1 + exp(x)),
    or F.softplus with its defaults) -> ``F.mish(x)``. (same function)

    torch's mish is x * tanh(log1p(exp(x))); softplus's threshold (x > 20 gives x) changes
    nothing because tanh of both is 1 in float32. +inf -> inf, -inf -> NaN in both."""
    for x, t in commuted(n, gm, "mul"):
        inner = unary(t, gm, "tanh") if single_use(t) else None
        if inner is not None and single_use(inner) and softplus_input(inner, gm) is x and float_input(x):
            return Match(F.mish, (x,), detail=f"{n.name} = x * tanh(softplus(x)) is mish({x.name})")
    return None


def _keep_above(bound: float):
    """``where(x > bound, x, f(x))``: above ``bound`` the written form is exactly x."""
    def wrap(graph: fx.Graph, fused: fx.Node) -> fx.Node:
        x = fused.args[0]
        return graph.call_function(torch.where, (graph.call_function(operator.gt, (x, bound)), x, fused))
    return wrap


def _half_x_one_plus(n, gm, fn: str):
    """(x, argument of fn) pairs for ``0.5 * x * (1 + fn(argument))`` in any arrangement."""
    p = product(n, gm)
    if len(p.factors) != 2 or not close(p.scale, 0.5):
        return
    for x, a in (p.factors, p.factors[::-1]):
        if not single_use(a) or not float_input(x):
            continue
        for one, f in commuted(a, gm, "add"):
            inner = unary(f, gm, fn) if number(one) == 1.0 and single_use(f) else None
            if inner is not None:
                yield x, inner


def gelu_erf(n, gm) -> Match | None:
    """``0.5 * x * (1 + erf(x / sqrt(2)))`` in any arrangement of the product (``x * 0.5``,
    ``x / 2``, ``x * 0.7071...``) -> ``where(x > 10, x, F.gelu(x))``. (same function)

    For x > 10, erf(x / sqrt(2)) is 1.0 in float32 and the written form is exactly x; torch's
    vectorized CPU gelu returns NaN at +inf and inf from 1.7e38 on, so those positions keep x.
    -inf gives NaN in both (-inf * 0), NaN stays NaN."""
    for x, inner in _half_x_one_plus(n, gm, "erf"):
        if is_product_of(inner, gm, x, SQRT1_2) is not None:
            return Match(F.gelu, (x,), detail=f"{n.name} = 0.5 x (1 + erf(x / sqrt 2)) is gelu({x.name})",
                         wrap=_keep_above(10.0))
    return None


def gelu_tanh(n, gm) -> Match | None:
    """``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))`` (x**3 as pow(x, 3) or
    x * x * x) -> ``F.gelu(x, approximate="tanh")``. (same function: torch evaluates this very
    formula; +inf -> inf, -inf -> NaN in both)"""
    for x, inner in _half_x_one_plus(n, gm, "tanh"):
        q = product(inner, gm)
        if len(q.factors) != 1 or not close(q.scale, SQRT_2_OVER_PI, 1e-5) or not single_use(q.factors[0]):
            continue
        for x2, cube in commuted(q.factors[0], gm, "add"):
            c = product(cube, gm) if x2 is x and single_use(cube) else None
            if c is not None and c.factors == [x, x, x] and close(c.scale, 0.044715):
                return Match(F.gelu, (x,), {"approximate": "tanh"},
                             detail=f"{n.name} = 0.5 x (1 + tanh(...)) is gelu({x.name}, approximate='tanh')")
    return None


def _clamp_bounds(n, gm):
    """(input, lo, hi) of a clamp with number bounds: clamp/clip, hardtanh, relu6."""
    if not is_call(n, gm, "clamp", "hardtanh", "relu6") or not n.args:
        return None
    k = kind(n, gm)
    mod = module_of(n, gm)
    if k == "relu6":
        lo, hi = 0.0, 6.0
    elif k == "hardtanh":
        lo = mod.min_val if mod is not None else arg(n, 1, "min_val", -1.0)
        hi = mod.max_val if mod is not None else arg(n, 2, "max_val", 1.0)
    else:
        lo, hi = arg(n, 1, "min"), arg(n, 2, "max")
    if number(lo) is None or number(hi) is None or len(n.args) > 3:
        return None
    return n.args[0], number(lo), number(hi)


def _plus_three(v, gm, x) -> bool:
    return single_use(v) and any(a is x and number(b) == 3.0 for a, b in commuted(v, gm, "add"))


def hardswish(n, gm) -> Match | None:
    """``x * clamp(x + 3, 0, 6) / 6`` (clamp as relu6 or hardtanh(.., 0, 6)) -> ``F.hardswish(x)``;
    ``x * clamp((x + 3) / 6, 0, 1)`` or ``x * hardsigmoid(x)`` -> ``where(x > 3, x,
    F.hardswish(x))``. (same function: torch computes x * min(max(x + 3, 0), 6) / 6, which
    overflows for x > 5.7e37 where the last two forms give x, exactly x for every x > 3; +inf ->
    inf, -inf -> NaN (-inf * 0) in all)"""
    p = product(n, gm)
    if len(p.factors) != 2:
        return None
    for x, h in (p.factors, p.factors[::-1]):
        if not single_use(h) or not float_input(x):
            continue
        if close(p.scale, 1.0) and unary(h, gm, "hardsigmoid") is x:
            return Match(F.hardswish, (x,), detail=f"{n.name} = x * hardsigmoid(x) is hardswish({x.name})",
                         wrap=_keep_above(3.0))
        b = _clamp_bounds(h, gm)
        if b is None:
            continue
        v, lo, hi = b
        if close(p.scale, 1.0 / 6.0) and (lo, hi) == (0.0, 6.0) and _plus_three(v, gm, x):
            return Match(F.hardswish, (x,), detail=f"{n.name} = x * relu6(x + 3) / 6 is hardswish({x.name})")
        if close(p.scale, 1.0) and (lo, hi) == (0.0, 1.0) and single_use(v):
            q = product(v, gm)
            if len(q.factors) == 1 and close(q.scale, 1.0 / 6.0) and _plus_three(q.factors[0], gm, x):
                return Match(F.hardswish, (x,), detail=f"{n.name} = x * clamp((x + 3) / 6, 0, 1) is hardswish({x.name})",
                             wrap=_keep_above(3.0))
    return None


def softplus(n, gm) -> Match | None:
    """``log(1 + exp(x))`` or ``log1p(exp(x))`` -> ``F.softplus(x, threshold=inf)``.
    (same function: with an infinite threshold torch computes log1p(exp(x)), so x > 88.7
    overflows to inf exactly as the written form does; for x < -16 log(1 + exp(x)) rounds to 0
    where log1p gives exp(x) < 1e-7)"""
    x = softplus_input(n, gm, written_only=True)
    if x is None or not float_input(x):
        return None
    return Match(F.softplus, (x,), {"beta": 1.0, "threshold": math.inf},
                 detail=f"{n.name} = log(1 + exp(x)) is softplus({x.name})")


ACTIVATIONS = (
    Formula("fused-silu", silu),
    Formula("fused-mish", mish),
    Formula("fused-gelu", gelu_erf),
    Formula("fused-gelu-tanh", gelu_tanh),
    Formula("fused-hardswish", hardswish),
    Formula("fused-softplus", softplus),
)
