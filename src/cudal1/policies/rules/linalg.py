"""Linear algebra: bias adds into the GEMM, matrix chains in their cheapest order, and scalar
scales and per-channel shifts after a linear layer or convolution moved into its weights.

Standard of every rule here: **reassociated** -- equal in real arithmetic for all inputs and
(finite) weights; in float32 a different but correct order of the same additions and
multiplications, like choosing another GEMM algorithm, so values agree within the rounding of
the sums. With infinite inputs the results are NaN-relaxed (a NaN appears in both or the
reference's alone) as argued for `reduce-after-linear`; they can differ when a finite
intermediate overflows float32 in one order only (values near 1e38).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

from .analysis import node_dtype, node_shape
from .codegen import Helper
from .folding import kept_values, weight_only_nodes
from .graph_utils import Rewrite, kind, module_of
from .patterns import binary, commuted, number, runtime_number, single_use
from .runtime import _fold_factor, _fold_patch_linear, _layer_times_weight, _patch_linear, helper_source

_MATMUL = ("matmul", "mm")


def _matmul(n, gm):
    for k in _MATMUL:
        ops = binary(n, gm, k)
        if ops is not None:
            return ops
    return None


def _float32(*nodes) -> bool:
    return all(node_dtype(v) == torch.float32 for v in nodes)


def _transposed_2d(w, gm):
    """W when ``w`` is ``W.t()``, ``W.T`` or ``W.transpose(0, 1)`` of a 2-D W."""
    if not isinstance(w, fx.Node) or node_shape(w) is None or len(node_shape(w)) != 2:
        return None
    k = kind(w, gm)
    if k == "t" and len(w.args) == 1 and not w.kwargs:
        return w.args[0]
    if k == "getattr" and w.args[1] == "T":
        return w.args[0]
    if k == "transpose" and len(w.args) == 3 and sorted(a % 2 for a in w.args[1:] if isinstance(a, int)) == [0, 1]:
        return w.args[0]
    return None


def matmul_bias(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``x @ W + b`` with b a vector over the output columns -> ``torch.addmm(b, x, W)`` for a
    2-D x, ``F.linear(x, W.t(), b)`` otherwise, and ``x @ W.t() + b`` -> ``F.linear(x, W, b)``:
    the bias is added inside the GEMM instead of in a second pass. (reassociated)"""
    out = []
    for n in list(gm.graph.nodes):
        for mm, b in commuted(n, gm, "add"):
            ops = _matmul(mm, gm) if single_use(mm) else None
            if ops is None or not isinstance(b, fx.Node):
                continue
            x, w = ops
            sx, sw, sb, so = node_shape(x), node_shape(w), node_shape(b), node_shape(mm)
            if None in (sx, sw, sb, so) or len(sx) < 2 or len(sw) != 2 or not _float32(x, w, b, n):
                continue
            if len(sb) != 1 or sb[0] != sw[1] or node_shape(n) != so:
                continue  # only a bias per output column broadcasts like addmm's
            base = _transposed_2d(w, gm)
            with gm.graph.inserting_before(n):
                if base is not None:
                    new = gm.graph.call_function(F.linear, (x, base, b))
                elif len(sx) == 2:
                    new = gm.graph.call_function(torch.addmm, (b, x, w))
                else:
                    new = gm.graph.call_function(F.linear, (x, gm.graph.call_method("t", (w,)), b))
            n.replace_all_uses_with(new)
            out.append(Rewrite("matmul-bias", n.name, f"{mm.name} + {b.name}: the bias added inside the GEMM "
                                                      f"({'linear' if base is not None or len(sx) > 2 else 'addmm'})"))
            break
    return out


def _chain_cost(a, b, c):
    """FLOP counts (left first, right first) of a @ b @ c for 2-D shapes, or None."""
    if any(s is None or len(s) != 2 for s in (a, b, c)) or a[1] != b[0] or b[1] != c[0]:
        return None
    m, n, k, p = a[0], a[1], b[1], c[1]
    return m * n * k + m * k * p, n * k * p + m * n * p


def reassociate_matrix_chains(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``(A @ B) @ C`` -> ``A @ (B @ C)`` (or back) when that order needs at most half the
    multiply-adds at the traced shapes (2-D operands). (reassociated)"""
    out = []
    for n in list(gm.graph.nodes):
        ops = _matmul(n, gm)
        if ops is None or not _float32(n):
            continue
        left, right = ops
        inner_l = _matmul(left, gm) if single_use(left) else None
        inner_r = _matmul(right, gm) if single_use(right) else None
        if inner_l is not None:
            a, b, c = inner_l[0], inner_l[1], right
            cost = _chain_cost(node_shape(a), node_shape(b), node_shape(c))
            if cost is None or 2 * cost[1] > cost[0] or not _float32(a, b, c):
                continue
            with gm.graph.inserting_before(n):
                new = gm.graph.call_function(operator.matmul, (a, gm.graph.call_function(operator.matmul, (b, c))))
            order = "A @ (B @ C)"
        elif inner_r is not None:
            a, b, c = left, inner_r[0], inner_r[1]
            cost = _chain_cost(node_shape(a), node_shape(b), node_shape(c))
            if cost is None or 2 * cost[0] > cost[1] or not _float32(a, b, c):
                continue
            with gm.graph.inserting_before(n):
                new = gm.graph.call_function(operator.matmul, (gm.graph.call_function(operator.matmul, (a, b)), c))
            order = "(A @ B) @ C"
        else:
            continue
        n.replace_all_uses_with(new)
        out.append(Rewrite("matrix-chain", n.name, f"{n.name} computed as {order}: "
                                                   f"{min(cost) / 1e6:.3g} instead of {max(cost) / 1e6:.3g} M multiply-adds"))
    return out


@dataclass
class _Layer:
    """A linear layer or convolution written as ``fn(x, weight, bias, *rest)``."""

    fn: object
    x: fx.Node
    weight: object  # get_attr name or weight-only node
    bias: object
    rest: tuple
    channel_dim: int  # where the output channels are: -1 for linear, 1 for convolutions
    channels: int


_CONV = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}
_CONV_T = {nn.ConvTranspose1d: F.conv_transpose1d, nn.ConvTranspose2d: F.conv_transpose2d,
           nn.ConvTranspose3d: F.conv_transpose3d}
_FUNCTIONS = {F.linear: -1, **{f: 1 for f in _CONV.values()}, **{f: 1 for f in _CONV_T.values()}}


def _layer(n, gm, weights: set) -> _Layer | None:
    shape = node_shape(n)
    if shape is None or len(n.args) < 1 or not isinstance(n.args[0], fx.Node):
        return None
    mod = module_of(n, gm)
    if mod is not None and len(n.args) == 1 and not n.kwargs:
        def attr(name):
            return f"{n.target}.{name}" if getattr(mod, name) is not None else None
        if isinstance(mod, nn.Linear):
            return _Layer(F.linear, n.args[0], attr("weight"), attr("bias"), (), -1, shape[-1])
        if type(mod) in _CONV and mod.padding_mode == "zeros":
            return _Layer(_CONV[type(mod)], n.args[0], attr("weight"), attr("bias"),
                          (mod.stride, mod.padding, mod.dilation, mod.groups), 1, shape[1])
        if type(mod) in _CONV_T and mod.padding_mode == "zeros":
            return _Layer(_CONV_T[type(mod)], n.args[0], attr("weight"), attr("bias"),
                          (mod.stride, mod.padding, mod.output_padding, mod.groups, mod.dilation), 1, shape[1])
        return None
    if n.op == "call_function" and n.target in _FUNCTIONS and not n.kwargs and len(n.args) >= 2:
        w, b = n.args[1], n.args[2] if len(n.args) > 2 else None
        if w not in weights or (b is not None and b not in weights):
            return None  # weights computed from the inputs: nothing to fold into
        dim = _FUNCTIONS[n.target]
        return _Layer(n.target, n.args[0], w, b, tuple(n.args[3:]), dim, shape[dim])
    return None


def _per_channel(t, layer: _Layer, out_shape, weights: set) -> bool:
    """``t`` is computed from weights alone and broadcasts against the layer's output along its
    channel dim only (or is one element)."""
    st = node_shape(t)
    if st is None or t not in weights:
        return False
    if math.prod(st) == 1:
        return len(st) <= len(out_shape)
    nd = len(out_shape)
    padded = (1,) * (nd - len(st)) + tuple(st)
    if len(st) > nd:
        return False
    ch = layer.channel_dim % nd
    return all(s == 1 for d, s in enumerate(padded) if d != ch) and padded[ch] == layer.channels


def _affine_step(n, gm, layer_node):
    """(scale, shift, shift-sign) when ``n`` is layer * c, layer / c, layer + t or layer - t."""
    for a, c in commuted(n, gm, "mul"):
        if a is layer_node and number(c) is not None and math.isfinite(c) and c != 0:
            return number(c), None, 1
    ops = binary(n, gm, "truediv")
    if ops is not None and ops[0] is layer_node and number(ops[1]) is not None and math.isfinite(ops[1]) and ops[1] != 0:
        return 1.0 / number(ops[1]), None, 1
    for a, t in commuted(n, gm, "add"):
        if a is layer_node:
            return None, t, 1
    ops = binary(n, gm, "sub")
    if ops is not None and ops[0] is layer_node:
        return None, ops[1], -1
    return None


def _numel(shape) -> int | None:
    return math.prod(shape) if shape is not None else None


def scale_before_matmul(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``(A @ B) * c`` or ``(A @ B) / c`` -> the scale applied to the smaller of A and B before
    the product, when it has at most half the product's elements at the traced shapes
    (attention scores: q is T x d, the scores T x T). c is a finite non-zero number, or a
    number the forward computes from tensor sizes (``1.0 / math.sqrt(k.size(-1))``).
    (reassociated)

    sum_k (c a_k) b_k = c sum_k a_k b_k in real arithmetic; in float32 each product is rounded
    once more or once less. A finite non-zero c keeps every term's sign and infinities (c inf =
    +-inf, never NaN), so an inf - inf in one order is one in the other. A size-computed c of
    0 (``d // 128``) gives NaN in the new order only where a row of A or a column of B holds
    inf or NaN, where the reference's product is not finite and times 0 NaN as well. The two
    can differ where c a_k, or the reference's product, overflows on its own (values near
    1e38)."""
    out = []
    for n in list(gm.graph.nodes):
        pairs = [(a, c, "mul") for a, c in commuted(n, gm, "mul")]
        ops = binary(n, gm, "truediv")
        if ops is not None:
            pairs.append((ops[0], ops[1], "truediv"))
        for mm, c, op in pairs:
            found = _matmul(mm, gm) if single_use(mm) else None
            literal = number(c)
            usable = math.isfinite(literal) and literal != 0 if literal is not None else \
                isinstance(c, fx.Node) and runtime_number(c, gm)
            if found is None or not usable or not _float32(n, *found):
                continue
            sizes = [_numel(node_shape(v)) for v in found]
            total = _numel(node_shape(n))
            if None in sizes or total is None or 2 * min(sizes) > total:
                continue
            side = sizes.index(min(sizes))
            g = gm.graph
            with g.inserting_before(n):
                scaled = g.call_function(operator.mul if op == "mul" else operator.truediv, (found[side], c))
                args = (scaled, found[1]) if side == 0 else (found[0], scaled)
                new = g.call_function(operator.matmul, args)
            n.replace_all_uses_with(new)
            out.append(Rewrite("scale-before-matmul", n.name, f"{'*' if op == 'mul' else '/'} {c} applied to "
                                                              f"{found[side].name} before {mm.name}"))
            break
    return out


def affine_into_weights(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``layer(x) * c``, ``layer(x) / c`` (c a finite non-zero number), ``layer(x) + t`` and
    ``layer(x) - t`` (t a number, or a parameter or buffer per output channel) after a linear
    layer or a zero-padded convolution (transposed too) -> one layer with weight ``W * c`` and
    bias ``b * c`` / ``b + t``. A positive c also passes through a relu or leaky_relu (slope >=
    0) between them: relu(y) * c = relu(y * c). The new weights depend on weights alone and are
    kept by `folding.fold_weight_values`. (reassociated; a factor that is a parameter is not
    folded: an infinite factor would turn the reference's inf into NaN)"""
    out = []
    weights = weight_only_nodes(gm)
    for n in list(gm.graph.nodes):
        if not (isinstance(n, fx.Node) and n.op in ("call_function", "call_method")) or not n.args:
            continue
        found = [(a, _layer(a, gm, weights)) for a in n.args if isinstance(a, fx.Node) and single_use(a)]
        layer_node, layer = next(((a, lay) for a, lay in found if lay is not None), (None, None))
        act = None  # a positively homogeneous activation between the layer and a positive scale
        if layer is None:
            for a in n.args:
                if _homogeneous(a, gm) and single_use(a) and single_use(a.args[0]):
                    act, layer_node, layer = a, a.args[0], _layer(a.args[0], gm, weights)
                    if layer is not None:
                        break
        step = _affine_step(n, gm, act or layer_node) if layer is not None and not n.kwargs else None
        if step is None or node_shape(n) != node_shape(layer_node) or not _float32(n, layer_node):
            continue
        scale, shift, sign = step
        if act is not None and (scale is None or scale <= 0):
            continue  # only a positive scale passes through relu / leaky_relu
        if shift is not None and not (number(shift) is not None and math.isfinite(shift) or
                                      isinstance(shift, fx.Node) and _per_channel(shift, layer, node_shape(n), weights)):
            continue
        if shift is not None and layer.bias is None and (number(shift) is not None or math.prod(node_shape(shift)) != layer.channels):
            continue  # no bias to add a number to
        g = gm.graph
        with g.inserting_before(n):
            w = g.get_attr(layer.weight) if isinstance(layer.weight, str) else layer.weight
            b = g.get_attr(layer.bias) if isinstance(layer.bias, str) else layer.bias
            if scale is not None:
                w = g.call_function(operator.mul, (w, scale))
                b = g.call_function(operator.mul, (b, scale)) if b is not None else None
                what = f"scale {scale:.6g}"
            else:
                t = shift if number(shift) is not None else g.call_method("reshape", (shift, -1))
                op = operator.add if sign > 0 else operator.sub
                b = g.call_function(op, (b, t)) if b is not None else (t if sign > 0 else g.call_function(operator.neg, (t,)))
                what = f"{'+' if sign > 0 else '-'} {shift if number(shift) is not None else shift.target}"
            new = g.call_function(layer.fn, (layer.x, w, b, *layer.rest))
            if act is not None:
                new = g.node_copy(act, lambda a: new if a is layer_node else a)
        n.replace_all_uses_with(new)
        detail = f"{what} after {layer_node.name} moved into its weights"
        if act is not None:  # an in-place activation is not dropped as dead code: erased here
            detail += f", through {kind(act, gm)} (f(c y) = c f(y) for c > 0)"
            for old in (n, act, layer_node):
                g.erase_node(old)
        out.append(Rewrite("affine-into-weights", n.name, detail))
    return out


def _homogeneous(a, gm) -> bool:
    """relu or leaky_relu with a non-negative slope: f(c * y) = c * f(y) for every c > 0."""
    if not (isinstance(a, fx.Node) and a.args and isinstance(a.args[0], fx.Node)):
        return False
    k = kind(a, gm)
    if k == "relu":
        return len(a.args) == 1
    if k == "leaky_relu":
        mod = module_of(a, gm)
        slope = mod.negative_slope if mod is not None else (a.args[1] if len(a.args) > 1 else a.kwargs.get("negative_slope", 0.01))
        return number(slope) is not None and slope >= 0
    return False


def _times_weight_shape(x, fn_name, weight, bias, factor, kept, channel_dim, *rest):
    """What analysis runs (meta tensors) for `runtime._layer_times_weight`: the written form."""
    return getattr(F, fn_name)(x, weight, bias, *rest) * factor


TIMES_WEIGHT = Helper("_layer_times_weight", _times_weight_shape,
                      helper_source(_fold_factor) + "\n\n" + helper_source(_layer_times_weight))


def weight_factor_into_weights(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``layer(x) * s`` with s a weight (one value, or one per output channel) after a linear
    layer or a zero-padded convolution -> `runtime._layer_times_weight`: while every factor is
    finite one layer call with ``W * s`` and ``b * s`` (kept until a weight changes);
    otherwise the written form, so an infinite factor still gives the reference's values.
    (reassociated)"""
    out = []
    weights = weight_only_nodes(gm)
    for n in list(gm.graph.nodes):
        for layer_node, s in commuted(n, gm, "mul"):
            layer = _layer(layer_node, gm, weights) if isinstance(layer_node, fx.Node) and single_use(layer_node) else None
            if layer is None or not isinstance(s, fx.Node) or not _per_channel(s, layer, node_shape(n), weights):
                continue
            if node_shape(n) != node_shape(layer_node) or not _float32(n, layer_node, s):
                continue
            transposed = layer.fn in _CONV_T.values()
            if transposed and math.prod(node_shape(s)) > 1 and (layer.rest[3] if len(layer.rest) > 3 else 1) != 1:
                continue  # per-channel factors of a grouped transposed convolution: channels split across dims
            g = gm.graph
            with g.inserting_before(n):
                w = g.get_attr(layer.weight) if isinstance(layer.weight, str) else layer.weight
                b = g.get_attr(layer.bias) if isinstance(layer.bias, str) else layer.bias
                kept, holder = kept_values(gm, "_factor_fold", _fold_factor)
                args = (layer.x, layer.fn.__name__, w, b, s, kept, 1 if transposed else 0, *layer.rest)
                new = g.create_node("call_function", TIMES_WEIGHT.fn, args, name=f"{n.name}_folded")
            n.replace_all_uses_with(new)
            out.append(Rewrite("weight-factor-into-weights", n.name,
                               f"* {s.target if s.op == 'get_attr' else s.name} after {layer_node.name} folded into its weights "
                               "while finite", helpers=(TIMES_WEIGHT,), kept=(holder,)))
            break
    return out


def _patch_as_written(x, conv, linear, kept, grid):
    """What analysis runs (meta tensors) for `runtime._patch_linear`: the written form."""
    return linear(conv(x).flatten(1))


PATCH_LINEAR = Helper("_patch_linear", _patch_as_written,
                      helper_source(_fold_patch_linear) + "\n\n" + helper_source(_patch_linear))


def _flattened(n, gm):
    """x when ``n`` flattens all but the first dim of x (``nn.Flatten()``, ``torch.flatten(x, 1)``)."""
    mod = module_of(n, gm)
    if isinstance(mod, nn.Flatten):
        return n.args[0] if mod.start_dim == 1 and mod.end_dim == -1 and len(n.args) == 1 and not n.kwargs else None
    if kind(n, gm) == "flatten" and n.op != "call_module" and len(n.args) == 2 and n.args[1] == 1 and not n.kwargs:
        return n.args[0]
    return None


def patch_embedding_into_linear(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``linear(flatten(conv(x)))`` with a Conv2d whose kernel equals its stride (no padding,
    dilation 1, one group) and whose patches tile the traced input exactly -> one linear layer
    on the flattened input (`runtime._patch_linear`): both are linear maps of x, so their
    composition is one, computed from the weights once and kept until a weight changes. A
    vision transformer's patch embedding followed by a projection of all patches (level3/32:
    512 x 3072 multiply-adds per sample instead of 512 x 32768). (reassociated; for the traced
    input shapes, behind the shape guard)

    Each input element lies in exactly one patch, so it reaches every output through the same
    products in either form, summed in another order. With an inf input the reference's
    outputs are all non-finite (every channel of its patch is +-inf or NaN); it is +-inf only
    when every product on the way has one sign, and then the composed coefficient has that sign
    and is non-zero. An infinite weight (checked once per weight version) runs the written form."""
    out = []
    for n in list(gm.graph.nodes):
        linear = module_of(n, gm)
        if type(linear) is not nn.Linear or len(n.args) != 1 or n.kwargs:
            continue
        flat = n.args[0]
        conv_node = _flattened(flat, gm) if single_use(flat) else None
        conv = module_of(conv_node, gm) if single_use(conv_node) else None
        if type(conv) is not nn.Conv2d or len(conv_node.args) != 1 or conv_node.kwargs or not _float32(n, conv_node):
            continue
        if conv.kernel_size != conv.stride or conv.padding != (0, 0) or conv.dilation != (1, 1) or conv.groups != 1:
            continue
        x = conv_node.args[0]
        shape, grid = node_shape(x), node_shape(conv_node)
        if shape is None or grid is None or len(shape) != 4 or (shape[2], shape[3]) != (grid[2] * conv.stride[0], grid[3] * conv.stride[1]):
            continue
        g = gm.graph
        with g.inserting_before(n):
            kept, holder = kept_values(gm, "_patch_fold", _fold_patch_linear)
            args = (x, g.get_attr(conv_node.target), g.get_attr(n.target), kept, (grid[2], grid[3]))
            new = g.create_node("call_function", PATCH_LINEAR.fn, args, name=f"{n.name}_composed")
        n.replace_all_uses_with(new)
        out.append(Rewrite("patch-embedding-into-linear", n.name, f"{n.target} after {conv_node.target}: one linear layer "
                                                                  "on the flattened input while the weights are finite",
                           helpers=(PATCH_LINEAR,), kept=(holder,), traced_shapes=True))
    return out


LINALG_RULES = (matmul_bias, reassociate_matrix_chains, scale_before_matmul, affine_into_weights, weight_factor_into_weights,
                patch_embedding_into_linear)
