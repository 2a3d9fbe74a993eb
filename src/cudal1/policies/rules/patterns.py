"""Reading written-out formulas in an FX graph: operands of arithmetic, products of factors,
reductions with their dims, and numbers that must equal a constant such as 1/sqrt(2).

The matchers are strict on purpose: an extra keyword (``torch.add(x, y, alpha=2)``,
``torch.div(x, y, rounding_mode="floor")``, ``x.var(dim)`` without ``unbiased=False``) makes a
formula a different one, and a rule that cannot read every argument does not fire.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

from torch import fx

from .analysis import node_shape
from .graph_utils import CALLS, arg, is_float_tensor, kind, module_of


def number(a) -> float | None:
    """A Python int or float (not a bool) as float, else None."""
    if isinstance(a, bool) or not isinstance(a, (int, float)):
        return None
    return float(a)


def close(v: float | None, target: float, rel: float = 1e-6) -> bool:
    """``v`` is ``target`` up to the rounding of a literal written with a few digits."""
    return v is not None and math.isfinite(v) and abs(v - target) <= rel * abs(target)


def runtime_number(v, gm) -> bool:
    """``v`` is a Python number when the forward runs, computed from numbers and tensor sizes
    alone (``1.0 / math.sqrt(k.size(-1))``)."""
    if number(v) is not None:
        return True
    if not isinstance(v, fx.Node) or node_shape(v) is not None:
        return False
    if v.op == "call_method" and v.target == "size":
        return len(v.args) == 2 and isinstance(v.args[1], int)
    if v.op != "call_function":
        return False
    if v.target in (math.sqrt, operator.truediv, operator.mul, operator.floordiv, operator.pow):
        return all(runtime_number(a, gm) for a in v.args) and not v.kwargs
    if v.target is operator.getitem and isinstance(v.args[0], fx.Node):
        src = v.args[0]
        return (src.op == "call_method" and src.target == "size") or (src.op == "call_function" and src.target is getattr
                                                                       and src.args[1] == "shape")
    return False


def is_call(n, gm: fx.GraphModule, *kinds: str) -> bool:
    return isinstance(n, fx.Node) and n.op in CALLS and kind(n, gm) in kinds


def single_use(n) -> bool:
    return isinstance(n, fx.Node) and len(n.users) == 1


def binary(n, gm: fx.GraphModule, k: str) -> tuple | None:
    """The two operands of ``n`` when it is the plain arithmetic operator ``k``
    (``add``, ``sub``, ``mul``, ``truediv``): two positional operands and no keywords."""
    if not is_call(n, gm, k) or n.op == "call_module" or len(n.args) != 2 or n.kwargs:
        return None
    return n.args


def commuted(n, gm: fx.GraphModule, k: str):
    """(a, b) and (b, a) for a commutative operator ``k`` (``add``, ``mul``); nothing otherwise."""
    ops = binary(n, gm, k)
    if ops is None:
        return []
    return [ops, ops[::-1]]


# functional and method forms whose only argument is the input (module forms are checked below)
_PLAIN_MODULES = {"sigmoid", "tanh", "relu", "relu6", "identity"}


def unary(n, gm: fx.GraphModule, k: str):
    """The input of ``n`` when it applies the unary function ``k`` with its default settings
    (one positional operand, no keywords but ``inplace=False``; a module of that kind with no
    settings)."""
    if not is_call(n, gm, k) or len(n.args) != 1 or any(key != "inplace" or v is not False for key, v in n.kwargs.items()):
        return None
    if n.op == "call_module" and k not in _PLAIN_MODULES:
        return None
    return n.args[0]


def softplus_input(n, gm: fx.GraphModule, written_only: bool = False):
    """x when ``n`` computes softplus(x) = log(1 + exp(x)): written out as ``log1p(exp(x))`` or
    ``log(1 + exp(x))``, or (unless ``written_only``) ``F.softplus(x)`` / ``nn.Softplus()`` with
    beta 1 and a threshold of 20 or more (above it torch returns x, which log1p(exp(x)) rounds
    to in float32 from about 17 up)."""
    if is_call(n, gm, "softplus"):
        mod = module_of(n, gm)
        beta = mod.beta if mod is not None else arg(n, 1, "beta", 1.0)
        threshold = mod.threshold if mod is not None else arg(n, 2, "threshold", 20.0)
        if written_only or number(beta) != 1.0 or number(threshold) is None or number(threshold) < 20.0 or len(n.args) > 3:
            return None
        return n.args[0] if n.args else None
    inner = unary(n, gm, "log1p")
    if inner is not None:
        return unary(inner, gm, "exp") if single_use(inner) else None
    inner = unary(n, gm, "log")
    if inner is None or not single_use(inner):
        return None
    for one, e in commuted(inner, gm, "add"):
        if number(one) == 1.0 and single_use(e):
            x = unary(e, gm, "exp")
            if x is not None:
                return x
    return None


@dataclass
class Product:
    """A product written as nested ``*`` and division by numbers: its tensor factors (a value
    raised to the power 2 or 3 counts as that many factors), the product of its numbers, and
    the intermediate nodes it consists of. An intermediate product used elsewhere too (``0.5 *
    x`` shared by two formulas after common-subexpression merging) is still read through: the
    rewrite stays correct, it only keeps that value alive."""

    factors: list = field(default_factory=list)
    scale: float = 1.0
    inner: list = field(default_factory=list)


def product(n, gm: fx.GraphModule) -> Product:
    out = Product()

    def walk(v):
        c = number(v)
        if c is not None:
            out.scale *= c
            return
        ops = binary(v, gm, "mul")
        if ops is not None:
            out.inner.append(v)
            walk(ops[0])
            walk(ops[1])
            return
        ops = binary(v, gm, "truediv")
        if ops is not None and number(ops[1]) not in (None, 0.0):
            out.inner.append(v)
            out.scale /= number(ops[1])
            walk(ops[0])
            return
        if is_call(v, gm, "pow") and v.op != "call_module" and len(v.args) == 2 and not v.kwargs \
                and number(v.args[1]) in (2.0, 3.0):
            out.inner.append(v)
            out.factors += [v.args[0]] * int(number(v.args[1]))
            return
        out.factors.append(v)

    walk(n)
    return out


def is_product_of(n, gm: fx.GraphModule, x, scale: float, extra: int = 0) -> Product | None:
    """The `Product` at ``n`` when it is ``scale * x * (extra other factors)``, else None."""
    p = product(n, gm)
    if p.factors.count(x) != 1 or len(p.factors) != 1 + extra or not close(p.scale, scale):
        return None
    return p


def dims_of(n, gm: fx.GraphModule, default=None) -> tuple[int, ...] | None:
    """The normalized reduction dims of a reduction node (``dim`` positional or keyword)."""
    src = n.args[0] if n.args else None
    shape = node_shape(src)
    d = arg(n, 1, "dim", default)
    if shape is None or d is None:
        return None
    ds = [d] if isinstance(d, int) and not isinstance(d, bool) else list(d) if isinstance(d, (list, tuple)) else None
    if not ds or not all(isinstance(v, int) and not isinstance(v, bool) for v in ds) or not shape:
        return None
    return tuple(sorted(v % len(shape) for v in ds))


def keepdim_reduction(n, gm: fx.GraphModule, k: str, x=None) -> tuple[int, ...] | None:
    """The dims of ``n`` when it is the reduction ``k`` (``sum``, ``mean``, ``amax``) of ``x``
    over explicit dims with ``keepdim=True`` and nothing else (no dtype), else None."""
    if not is_call(n, gm, k) or n.op == "call_module" or not n.args or (x is not None and n.args[0] is not x):
        return None
    if arg(n, 2, "keepdim", False) is not True or len(n.args) > 3 or set(n.kwargs) - {"dim", "keepdim"}:
        return None
    return dims_of(n, gm)


def row_max(n, gm: fx.GraphModule):
    """(x, dims) when ``n`` is the maximum of x over dims kept as size-1 dims: ``amax(x, d,
    keepdim=True)``, ``x.max(d, keepdim=True)[0]`` or ``.values``."""
    dims = keepdim_reduction(n, gm, "amax")
    if dims is not None:
        return n.args[0], dims
    if not (isinstance(n, fx.Node) and n.op == "call_function"):
        return None
    if n.target is operator.getitem and n.args[1] == 0:
        src = n.args[0]
    elif n.target is getattr and n.args[1] == "values":
        src = n.args[0]
    else:
        return None
    if not single_use(src) or not isinstance(arg(src, 1, "dim"), int):
        return None
    dims = keepdim_reduction(src, gm, "max")
    return (src.args[0], dims) if dims is not None else None


def trailing(dims: tuple[int, ...], ndim: int) -> bool:
    """``dims`` are the last len(dims) dims."""
    return bool(dims) and dims == tuple(range(ndim - len(dims), ndim))


def float_input(x) -> bool:
    return isinstance(x, fx.Node) and is_float_tensor(x)
