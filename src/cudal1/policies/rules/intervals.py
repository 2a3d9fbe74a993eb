"""Interval analysis over an FX graph: which values are pinned to one number for EVERY input.

Each tensor value gets an `Interval` [lo, hi] that contains every element it can take for any
inputs and any weights, plus a flag ``nan`` saying whether an element may be NaN. Inputs and
parameters start unknown: [-inf, inf] with NaN possible. Nothing is inferred from sample
inputs. Where the rules do not know an operator, the result is unknown, so the analysis is
sound by construction (it can only miss constants, never invent them).

Bounds are kept in float64 and widened outward by a relative 1e-6 after any operator whose
float32 result could round past the exact bound; a value is "pinned" only when lo == hi was
reached through exact operators (clamps, min/max, multiplication by an exact zero, x - x) or
when every input of an elementwise operator is pinned, in which case the pinned output is
computed by running that very operator in the value's dtype on one element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import fx

from .analysis import node_dtype, node_shape
from .graph_utils import arg, kind, module_of, reduction_dims

INF = math.inf


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    nan: bool  # an element may be NaN

    @property
    def point(self) -> bool:
        return self.lo == self.hi and math.isfinite(self.lo)

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    @property
    def value(self) -> float:
        return self.lo


TOP = Interval(-INF, INF, True)


def const(c: float) -> Interval:
    c = float(c)
    if math.isnan(c):
        return Interval(-INF, INF, True)
    return Interval(c, c, False)


def _widen(lo: float, hi: float) -> tuple[float, float]:
    def down(v):
        return v if v == 0 or not math.isfinite(v) else v - abs(v) * 1e-6
    def up(v):
        return v if v == 0 or not math.isfinite(v) else v + abs(v) * 1e-6
    return down(lo), up(hi)


def _clip(iv: Interval, lo: float | None, hi: float | None) -> Interval:
    a, b = iv.lo, iv.hi
    if lo is not None:
        a, b = max(a, lo), max(b, lo)
    if hi is not None:
        a, b = min(a, hi), min(b, hi)
    return Interval(a, b, iv.nan)


# Elementwise operators that map a NaN element to NaN (the NaN-relaxed constant argument
# relies on this; see simplify.replace_pinned_values). Views only move elements.
NAN_PROPAGATING = {
    "add", "sub", "mul", "truediv", "neg", "relu", "relu6", "clamp", "clamp_min", "clamp_max",
    "hardtanh", "tanh", "sigmoid", "exp", "log", "gelu", "silu", "mish", "softplus", "elu",
    "leaky_relu", "hardswish", "hardsigmoid", "minimum", "maximum", "abs", "sqrt", "rsqrt",
    "view", "reshape", "squeeze", "unsqueeze", "flatten", "permute", "transpose", "t",
    "contiguous", "clone", "detach", "expand", "identity",
}
# Operators whose output element depends on a set of input elements and is NaN whenever one of
# them is (a NaN in a dot product, a sum or a max makes the result NaN; norms spread it to the
# whole normalized group, which still contains the position).
NAN_SPREADING = {
    "linear", "matmul", "mm", "bmm", "conv", "conv_transpose", "sum", "mean", "softmax",
    "log_softmax", "logsumexp", "max", "amax", "min", "amin", "avg_pool", "max_pool",
    "layer_norm", "group_norm", "batch_norm", "instance_norm", "rms_norm", "addmm",
}


def nan_keeping_to_output(node: fx.Node, gm: fx.GraphModule) -> bool:
    """Every path from ``node`` to the output goes through NaN-keeping operators only."""
    seen = set()
    stack = list(node.users)
    while stack:
        u = stack.pop()
        if u in seen:
            continue
        seen.add(u)
        if u.op == "output":
            continue
        if kind(u, gm) not in NAN_PROPAGATING | NAN_SPREADING:
            return False
        stack.extend(u.users)
    return True


# Monotone non-decreasing on all of [-inf, inf] and NaN-preserving (f(nan) = nan, f(+-inf) finite or inf).
_MONOTONE = {
    "tanh": math.tanh, "sigmoid": lambda v: 1 / (1 + math.exp(-v)) if v > -700 else 0.0,
    "relu": lambda v: max(v, 0.0), "exp": lambda v: math.exp(v) if v < 700 else INF,
}


def _scalar(x):
    if isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    return None


def _evaluate_pinned(node: fx.Node, gm: fx.GraphModule, env: dict) -> float | None:
    """Run an elementwise operator on one element per input, in the node's dtype."""
    dtype = node_dtype(node)
    if dtype is None or not dtype.is_floating_point:
        return None

    def sub(a):
        if isinstance(a, fx.Node):
            iv = env.get(a)
            if iv is None or not iv.point:
                raise LookupError
            return torch.tensor([iv.value], dtype=node_dtype(a) or dtype)
        return a

    try:
        args = tuple(sub(a) for a in node.args)
        kwargs = {k: sub(v) for k, v in node.kwargs.items()}
        if node.op == "call_function":
            out = node.target(*args, **kwargs)
        elif node.op == "call_method":
            out = getattr(args[0], node.target)(*args[1:], **kwargs)
        elif node.op == "call_module":
            out = _module_on_cpu(gm, node)(*args, **kwargs)
        else:
            return None
    except LookupError:
        return None
    except Exception:  # noqa: BLE001 - an operator that cannot run on one element is simply not pinned
        return None
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        return None
    v = float(out.to(torch.float64).item())
    return v if math.isfinite(v) else None


def _module_on_cpu(gm: fx.GraphModule, node: fx.Node):
    mod = gm.get_submodule(node.target)
    if any(True for _ in mod.parameters()) or any(True for _ in mod.buffers()):
        raise LookupError  # a module with weights is not elementwise
    return mod


ELEMENTWISE_PINNABLE = {
    "add", "sub", "mul", "truediv", "neg", "relu", "relu6", "clamp", "clamp_min", "clamp_max",
    "hardtanh", "tanh", "sigmoid", "exp", "gelu", "silu", "mish", "softplus", "elu", "leaky_relu",
    "hardswish", "hardsigmoid", "minimum", "maximum", "abs", "pow", "square", "sqrt", "rsqrt",
    "log", "erf", "sin", "cos",
}
VIEWS = {"view", "reshape", "squeeze", "unsqueeze", "flatten", "permute", "transpose", "t",
         "contiguous", "clone", "detach", "expand", "identity", "float", "to"}


def analyze(gm: fx.GraphModule) -> dict[fx.Node, Interval]:
    """An interval for every node of ``gm`` (tuple-valued nodes get their first element's)."""
    env: dict[fx.Node, Interval] = {}
    for node in gm.graph.nodes:
        env[node] = _transfer(node, gm, env)
    return env


def _iv(env, a) -> Interval:
    if isinstance(a, fx.Node):
        return env.get(a, TOP)
    s = _scalar(a)
    return const(s) if s is not None else TOP


def _transfer(node: fx.Node, gm: fx.GraphModule, env: dict) -> Interval:
    if node.op in ("placeholder", "get_attr", "output"):
        return TOP
    k = kind(node, gm)
    mod = module_of(node, gm)
    x = _iv(env, node.args[0]) if node.args else TOP

    # torch.tensor(c) and friends: a literal.
    if node.op == "call_function" and k == "tensor":
        s = _scalar(node.args[0]) if node.args else None
        return const(s) if s is not None else TOP
    if node.op == "call_function" and k in ("zeros", "zeros_like"):
        return const(0.0)
    if node.op == "call_function" and k in ("ones", "ones_like"):
        return const(1.0)

    # An elementwise operator whose inputs are all pinned is pinned: evaluate it exactly.
    if k in ELEMENTWISE_PINNABLE:
        ins = [a for a in list(node.args) + list(node.kwargs.values()) if isinstance(a, fx.Node)]
        if ins and all(env.get(a, TOP).point for a in ins):
            v = _evaluate_pinned(node, gm, env)
            if v is not None:
                return Interval(v, v, any(env[a].nan for a in ins))

    if k in VIEWS:
        if k == "to" and any(isinstance(a, torch.dtype) for a in node.args[1:]):
            return TOP
        return x
    if k == "getitem":
        src = node.args[0]
        # (values, indices) of a max/min reduction: the values' interval sits on the tuple node
        if isinstance(src, fx.Node) and node.args[1] == 0 and kind(src, gm) in ("max", "min"):
            return env.get(src, TOP)
        if isinstance(src, fx.Node) and node_shape(node) is not None and isinstance(node.args[1], (tuple, slice, int)) and node_shape(src) is not None:
            return env.get(src, TOP) if node_dtype(node) == node_dtype(src) else TOP
        return TOP
    if k in ("relu", "relu6", "hardtanh", "clamp", "clamp_min", "clamp_max"):
        if k == "relu":
            return _clip(x, 0.0, None)
        if k == "relu6":
            return _clip(x, 0.0, 6.0)
        if k == "hardtanh":
            lo = mod.min_val if mod is not None else arg(node, 1, "min_val", -1.0)
            hi = mod.max_val if mod is not None else arg(node, 2, "max_val", 1.0)
            return _clip(x, _scalar(lo), _scalar(hi))
        lo = arg(node, 1, "min") if k in ("clamp", "clamp_min") else None
        hi = arg(node, 2 if k == "clamp" else 1, "max") if k in ("clamp", "clamp_max") else None
        if isinstance(lo, fx.Node) or isinstance(hi, fx.Node):
            lo_iv, hi_iv = _iv(env, lo) if lo is not None else None, _iv(env, hi) if hi is not None else None
            if (lo_iv is not None and not lo_iv.point) or (hi_iv is not None and not hi_iv.point):
                return TOP
            lo = lo_iv.value if lo_iv is not None else None
            hi = hi_iv.value if hi_iv is not None else None
            out = _clip(x, lo, hi)
            return Interval(out.lo, out.hi, out.nan or any(i is not None and i.nan for i in (lo_iv, hi_iv)))
        lo, hi = (_scalar(lo) if lo is not None else None), (_scalar(hi) if hi is not None else None)
        if lo is not None and hi is not None and lo > hi:
            return const(hi) if not x.nan else Interval(hi, hi, True)  # torch.clamp: min > max gives max
        return _clip(x, lo, hi)
    if k in ("minimum", "maximum") or (k in ("min", "max") and len(node.args) >= 2 and isinstance(node.args[1], fx.Node)):
        y = _iv(env, node.args[1])
        if k in ("minimum", "min"):
            return Interval(min(x.lo, y.lo), min(x.hi, y.hi), x.nan or y.nan)
        return Interval(max(x.lo, y.lo), max(x.hi, y.hi), x.nan or y.nan)
    if k in ("max", "min", "amax", "amin"):  # reductions: every result is one of the elements
        return x
    if k in ("mean", "sum"):
        if x.point and x.value == 0.0:
            return x  # a sum of exact zeros is exactly zero
        if k == "mean" and x.bounded:
            return Interval(*_widen(x.lo, x.hi), x.nan)
        return Interval(-INF, INF, True) if not x.bounded else Interval(-INF, INF, x.nan)
    if k in _MONOTONE:
        f = _MONOTONE[k]
        lo, hi = _widen(f(x.lo), f(x.hi))
        lo, hi = (max(lo, 0.0), min(hi, 1.0)) if k == "sigmoid" else (max(lo, -1.0), min(hi, 1.0)) if k == "tanh" else (lo, hi)
        return Interval(lo, hi, x.nan)
    if k == "neg":
        return Interval(-x.hi, -x.lo, x.nan)
    if k == "sub" and len(node.args) == 2 and node.args[0] is node.args[1] and isinstance(node.args[0], fx.Node):
        # x - x: exactly 0 for finite x; NaN where x is +-inf or NaN.
        return Interval(0.0, 0.0, x.nan or not x.bounded)
    if k in ("add", "sub", "mul", "truediv") and len(node.args) == 2:
        y = _iv(env, node.args[1])
        return _arith(k, x, y)
    if k == "softmax":
        return Interval(0.0, 1.0, x.nan or not x.bounded)
    if k in ("dropout", "dropout2d"):
        p = mod.p if mod is not None else arg(node, 1, "p", 0.5)
        if not isinstance(p, (int, float)) or not 0 <= p < 1:
            return TOP
        s = 1.0 / (1.0 - p)
        if x.point and x.value == 0.0:
            return x  # every element is 0 (kept: 0 * scale) or dropped (0)
        lo, hi = _widen(min(0.0, x.lo * s), max(0.0, x.hi * s))
        return Interval(lo, hi, x.nan or not x.bounded)
    return TOP


def _arith(op: str, x: Interval, y: Interval) -> Interval:
    nan = x.nan or y.nan
    if op == "mul":
        for a, b in ((x, y), (y, x)):
            if a.point and a.value == 0.0:
                # 0 * v is +-0 for finite v; NaN when v is +-inf or NaN.
                return Interval(0.0, 0.0, nan or not b.bounded)
    if not (x.bounded and y.bounded):
        return TOP
    if op == "add":
        lo, hi = x.lo + y.lo, x.hi + y.hi
    elif op == "sub":
        lo, hi = x.lo - y.hi, x.hi - y.lo
    elif op == "mul":
        c = [x.lo * y.lo, x.lo * y.hi, x.hi * y.lo, x.hi * y.hi]
        lo, hi = min(c), max(c)
    else:
        if y.lo <= 0.0 <= y.hi:
            return TOP
        c = [x.lo / y.lo, x.lo / y.hi, x.hi / y.lo, x.hi / y.hi]
        lo, hi = min(c), max(c)
    lo, hi = _widen(lo, hi)
    return Interval(lo, hi, nan)


def reduction_over_size1(node: fx.Node, dim) -> bool:
    dims = reduction_dims(node, dim)
    shape = node_shape(node.args[0]) if node.args else None
    return bool(dims) and shape is not None and all(shape[d] == 1 for d in dims)
