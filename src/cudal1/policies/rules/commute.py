"""Work moved past a pooling, which then runs it on a fraction of the elements: elementwise
work after a max pooling (`move_monotone_after_max_pool`), a 1x1 convolution after an average
pooling (`pool_before_pointwise_conv`); and elementwise work before a repeat along a batch
dim (`elementwise_before_repeat`).

``max_pool(f(y)) = f(max_pool(y))`` for every f that is non-decreasing: the window's largest
f-value is f of its largest value. Read: a chain of non-decreasing elementwise operators
between a value and the max pooling after it (ReLU -> MaxPool in most CNN stems, ``tanh(y) *
s + b`` before a pooling), each used only by the next. f then runs on the pooled tensor, 1/4 of
the elements for a 2x2 window.

Standard: **exact** for relu, relu6, leaky_relu (slope >= 0), hardtanh/clamp with number
bounds, adding or subtracting a number, multiplying or dividing by a positive number: float32
rounding is itself non-decreasing, so the same element wins the window and gets the same value
(up to the sign of zero). NaN: torch's max pooling returns NaN for a window with a NaN, and f
keeps NaN, in both orders. For tanh, sigmoid and exp (library approximations need not be
non-decreasing in their last bit) the values agree within an ulp. Adding a per-channel tensor
(constant over the pooled dims) is exact for finite values; an infinite one may turn the
reference's NaN into a number, so it is applied as NaN-relaxed (see `simplify`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from torch import fx, nn

from .analysis import node_shape
from .graph_utils import Rewrite, arg, kind, module_of, reaches
from .intervals import nan_keeping_to_output
from .patterns import binary, number, single_use

_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_POOL_FUNCTIONS = {"max_pool", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"}
_ALWAYS = {"relu", "relu6", "tanh", "sigmoid", "exp", "hardsigmoid"}


def _pool_dims(n, gm) -> int | None:
    """How many trailing dims a max pooling node pools over, when it returns values only."""
    mod = module_of(n, gm)
    if mod is not None:
        if not isinstance(mod, _POOLS) or getattr(mod, "return_indices", False):
            return None
        name = type(mod).__name__
    elif n.op == "call_function" and kind(n, gm) in _POOL_FUNCTIONS:
        if arg(n, 6 if kind(n, gm) == "max_pool" else 2, "return_indices", False) is not False:
            return None
        name = getattr(n.target, "__name__", "")
    else:
        return None
    return int(name[-2]) if name[-2].isdigit() else None


def _monotone_step(n, gm, pooled: int, out_shape):
    """(chain input, NaN-relaxed?) when ``n`` is a non-decreasing function of one operand."""
    k = kind(n, gm)
    mod = module_of(n, gm)
    if not n.args or not isinstance(n.args[0], fx.Node):
        return None
    x = n.args[0]
    if k in _ALWAYS and len(n.args) == 1 and all(key == "inplace" for key in n.kwargs):
        return x, False
    if k == "leaky_relu":
        slope = mod.negative_slope if mod is not None else arg(n, 1, "negative_slope", 0.01)
        return (x, False) if number(slope) is not None and slope >= 0 else None
    if k in ("hardtanh", "clamp", "clamp_min", "clamp_max"):
        if mod is not None:
            return x, False
        names = {"hardtanh": ("min_val", "max_val"), "clamp": ("min", "max"), "clamp_min": ("min",), "clamp_max": ("max",)}[k]
        bounds = [arg(n, i + 1, name) for i, name in enumerate(names)]
        ok = all(b is None or number(b) is not None for b in bounds) and len(n.args) <= 1 + len(names)
        return (x, False) if ok else None
    for op in ("add", "sub", "mul", "truediv"):
        ops = binary(n, gm, op)
        if ops is None:
            continue
        a, c = ops
        if op in ("add", "mul") and not (isinstance(a, fx.Node) and node_shape(a) == out_shape):
            a, c = c, a
        if not (isinstance(a, fx.Node) and node_shape(a) == out_shape):
            return None
        if number(c) is not None:
            positive = op in ("add", "sub") or (math.isfinite(c) and c > 0)
            return (a, False) if positive else None
        if op in ("add", "sub") and _constant_over_pooled(c, pooled, out_shape):
            return a, True
        return None
    return None


def _constant_over_pooled(t, pooled: int, out_shape) -> bool:
    """A tensor operand that is the same for every position of a pooled window (size 1 there)
    and does not widen the result."""
    s = node_shape(t)
    if s is None or len(s) > len(out_shape):
        return False
    padded = (1,) * (len(out_shape) - len(s)) + tuple(s)
    return all(p == 1 for p in padded[len(padded) - pooled:]) and all(p in (1, o) for p, o in zip(padded, out_shape))


def move_monotone_after_max_pool(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``max_pool(f(y))`` -> ``f(max_pool(y))`` for a chain f of non-decreasing elementwise
    operators (see the module docstring for the standard)."""
    out = []
    for pool in list(gm.graph.nodes):
        pooled = _pool_dims(pool, gm)
        if pooled is None or len(pool.args) < 1 or not single_use(pool.args[0]):
            continue
        chain, relaxed, v = [], False, pool.args[0]
        shape = node_shape(v)
        while isinstance(v, fx.Node) and single_use(v) and shape is not None:
            step = _monotone_step(v, gm, pooled, shape)
            if step is None:
                break
            chain.append(v)
            relaxed |= step[1]
            v = step[0]
        if not chain or node_shape(v) != shape or (relaxed and not nan_keeping_to_output(pool, gm)):
            continue
        chain.reverse()  # innermost first
        with gm.graph.inserting_before(pool):
            value = gm.graph.node_copy(pool, lambda a: v if a is pool.args[0] else a)
            flowing = v  # the chain value each operator reads, now replaced by its pooled copy
            for op in chain:
                value = gm.graph.node_copy(op, lambda a, src=flowing, new=value: new if a is src else a)
                flowing = op
        pool.replace_all_uses_with(value)
        gm.graph.erase_node(pool)
        for op in reversed(chain):  # in-place modules (ReLU(inplace=True)) are not dropped by dead-code removal
            gm.graph.erase_node(op)
        names = " -> ".join(kind(op, gm) for op in chain)
        out.append(Rewrite("monotone-after-max-pool", pool.name, f"{names} runs after {pool.name} on the pooled values"
                                                                  f"{' (NaN-relaxed)' if relaxed else ''}"))
    return out


_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_POINTWISE_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _ones(v, n: int) -> bool:
    return tuple(v) == (1,) * n if isinstance(v, (tuple, list)) else v == 1


def pool_before_pointwise_conv(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``avg_pool(conv1x1(y))`` -> ``conv1x1(avg_pool(y))`` for a 1x1 convolution (stride 1, no
    padding) and an average pooling without padding: both are linear and the convolution acts
    on each position alone, so averaging before it gives the same values in real arithmetic
    (the bias is constant over each window). The convolution then runs on the pooled positions
    only (a quarter for a 2x2 pool, as in DenseNet's transition layers). (reassociated)"""
    out = []
    for pool in list(gm.graph.nodes):
        pm = module_of(pool, gm)
        conv_node = pool.args[0] if pool.args else None
        cm = module_of(conv_node, gm) if isinstance(conv_node, fx.Node) else None
        if not isinstance(pm, _AVG_POOLS) or not isinstance(cm, _POINTWISE_CONVS) or not single_use(conv_node):
            continue
        nd = int(type(cm).__name__[-2])
        if type(pm).__name__[-2] != str(nd) or len(pool.args) != 1 or pool.kwargs or len(conv_node.args) != 1:
            continue
        if not (_ones(cm.kernel_size, nd) and _ones(cm.stride, nd) and _ones(cm.dilation, nd) and cm.padding_mode == "zeros"
                and not isinstance(cm.padding, str) and tuple(cm.padding) == (0,) * nd):
            continue
        if pm.ceil_mode or pm.padding not in (0, (0,) * nd) or getattr(pm, "divisor_override", None) is not None:
            continue
        with gm.graph.inserting_before(pool):
            pooled = gm.graph.node_copy(pool, lambda a: conv_node.args[0] if a is conv_node else a)
            new = gm.graph.node_copy(conv_node, lambda a: pooled if a is conv_node.args[0] else a)
        pool.replace_all_uses_with(new)
        out.append(Rewrite("pool-before-pointwise-conv", pool.name, f"{pool.target} averages before the 1x1 {conv_node.target}"))
    return out


_ELEMENTWISE = {"relu", "relu6", "tanh", "sigmoid", "exp", "gelu", "silu", "mish", "neg", "abs", "sqrt", "rsqrt", "log",
                "softplus", "elu", "leaky_relu", "hardswish", "hardsigmoid", "hardtanh", "clamp", "erf", "sin", "cos"}


def elementwise_before_repeat(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``f(a.expand(...))`` / ``f(a.repeat(...))`` -> ``f(a).expand(...)`` / ``f(a).repeat(...)``
    for an elementwise f of one tensor (numbers as other operands): the same value is otherwise
    computed once per copy along the repeated (batch) dims. (exact for arithmetic, relu and
    clamps; within an ulp for transcendental functions, whose vectorized and scalar paths in
    torch may differ in the last bit, so an element's value can depend on its position.) An
    expanded result the forward returns is made contiguous, as f's own result
    was; not applied in graphs with in-place operators (they could write through the expanded view)."""
    if ctx["has_inplace"]:
        return []
    out = []
    for n in list(gm.graph.nodes):
        if n.op not in ("call_function", "call_method") or not n.args or not isinstance(n.args[0], fx.Node):
            continue
        rep = n.args[0]
        k = kind(n, gm)
        others = [a for a in list(n.args[1:]) + list(n.kwargs.values()) if isinstance(a, fx.Node)]
        elementwise = k in _ELEMENTWISE or (k in ("add", "sub", "mul", "truediv") and len(n.args) == 2 and not n.kwargs)
        if not elementwise or others or rep.op != "call_method" or rep.target not in ("expand", "repeat") or not single_use(rep):
            continue
        a = rep.args[0]
        if not isinstance(a, fx.Node) or node_shape(a) is None or node_shape(n) != node_shape(rep):
            continue
        with gm.graph.inserting_before(n):
            once = gm.graph.node_copy(n, lambda v: a if v is rep else v)
            new = gm.graph.node_copy(rep, lambda v: once if v is a else v)
            if rep.target == "expand" and reaches(n, lambda m: m.users, lambda m: m.op == "output"):
                new = gm.graph.call_method("contiguous", (new,))
        n.replace_all_uses_with(new)
        out.append(Rewrite("elementwise-before-repeat", n.name, f"{k} of {rep.name} computed once before the {rep.target}"))
    return out
