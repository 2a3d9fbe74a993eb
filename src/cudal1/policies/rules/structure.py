"""Rewrites of a network's layout: layers that read the same input merged into one call
(`merge_sibling_layers`), one activation after a concatenation instead of one per part
(`activation_after_cat`), and adaptive poolings that leave their input as it is dropped
(`drop_identity_pooling`). Each rule's docstring gives its standard (simplify's module
docstring and docs/optimizer.md define them).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import fx, nn

from .analysis import node_dtype, node_shape
from .graph_utils import CALLS, Rewrite, arg, is_inplace, kind, module_of
from .patterns import single_use

_CONV_FUNCTIONS = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}


def _sibling_key(mod: nn.Module):
    """What two layers must share to be one call with their weights stacked, or None."""
    if type(mod) is nn.Linear:
        return nn.Linear, mod.in_features, mod.bias is not None, mod.weight.dtype
    if type(mod) in _CONV_FUNCTIONS and mod.groups == 1 and mod.padding_mode == "zeros":
        return (type(mod), mod.in_channels, mod.kernel_size, mod.stride, mod.padding, mod.dilation,
                mod.bias is not None, mod.weight.dtype)
    return None


# Layers that read a strided input as they read a contiguous one (a part of the stacked output
# is a strided view; anything else, a ``.view`` or the forward's output, gets it contiguous).
_STRIDED_OK = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.modules.pooling._MaxPoolNd,
               nn.modules.pooling._AvgPoolNd)


def _takes_strided(user: fx.Node, gm: fx.GraphModule) -> bool:
    return (user.op == "call_function" and user.target is torch.cat) or isinstance(module_of(user, gm), _STRIDED_OK)


def merge_sibling_layers(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """Two or more Linear layers, or convolutions with the same kernel, stride, padding and
    dilation (groups 1, zero padding), applied to the same value -> one layer call with their
    weights (and biases) concatenated along the output features, split into the parts.
    (reassociated)

    Each output feature of a linear layer or convolution is a sum over the input alone with its
    own filter, so the stacked call computes every feature by the same formula; only the
    blocking of the GEMM or convolution algorithm, which depends on the number of filters,
    may order the sums differently. A NaN or inf in one filter stays in its own features. The
    input is read once instead of once per layer (GoogLeNet's 1x1 branches). A part read by
    anything but a concatenation or a layer (`_STRIDED_OK`) is made contiguous, as the layer's
    own output was (a ``.view`` needs it). The stacked weights depend on weights alone and are
    kept by `folding.fold_weight_values`. Not applied in graphs with in-place operators (one
    could change the input between two of the layers)."""
    if ctx["has_inplace"]:
        return []
    out = []
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    for x in list(gm.graph.nodes):
        groups: dict = {}
        for u in x.users:
            mod = module_of(u, gm)
            key = _sibling_key(mod) if mod is not None and u.args == (x,) and not u.kwargs else None
            if key is not None and node_dtype(u) == torch.float32:
                groups.setdefault(key, []).append(u)
        for nodes in groups.values():
            if len(nodes) < 2:
                continue
            nodes.sort(key=order.__getitem__)
            mods = [gm.get_submodule(n.target) for n in nodes]
            sizes = [m.weight.shape[0] for m in mods]
            g = gm.graph
            with g.inserting_before(nodes[0]):
                weight = g.call_function(torch.cat, ([g.get_attr(f"{n.target}.weight") for n in nodes], 0))
                bias = g.call_function(torch.cat, ([g.get_attr(f"{n.target}.bias") for n in nodes], 0)) \
                    if mods[0].bias is not None else None
                if isinstance(mods[0], nn.Linear):
                    merged = g.call_function(F.linear, (x, weight, bias))
                    dim = -1
                else:
                    m = mods[0]
                    merged = g.call_function(_CONV_FUNCTIONS[type(m)], (x, weight, bias, m.stride, m.padding, m.dilation, 1))
                    dim = 1
                parts = g.call_function(torch.split, (merged, sizes, dim))
                for i, n in enumerate(nodes):
                    part = g.call_function(operator.getitem, (parts, i))
                    if not all(_takes_strided(u, gm) for u in n.users):
                        part = g.call_method("contiguous", (part,))
                    n.replace_all_uses_with(part)
            out.append(Rewrite("merge-sibling-layers", nodes[0].name,
                               f"{', '.join(str(n.target) for n in nodes)} read {x.name}: one call with stacked weights"))
    return out


# Elementwise functions that give each element's value from that element alone, bit for bit
# wherever it stands, with no setting other than ``inplace``.
_POSITION_FREE = {"relu", "relu6"}
# Layers whose output is a new tensor (never a view of their input).
_FRESH = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm)


def _owned(x, gm: fx.GraphModule) -> bool:
    """``x`` is a tensor that only its one user reads: a layer's new output, or an in-place
    activation of one (which returns the tensor it wrote), each read by nothing else. Writing
    into it, or handing it on in place of a copy, changes nothing any other node sees."""
    if not single_use(x):
        return False
    if isinstance(module_of(x, gm), _FRESH):
        return True
    return kind(x, gm) in _POSITION_FREE and is_inplace(x, gm) and len(x.args) == 1 and _owned(x.args[0], gm)


def _activation_input(n: fx.Node, gm: fx.GraphModule) -> tuple[str, fx.Node] | None:
    """(kind, input) for a relu / relu6 of a layer's output that nothing else reads (an
    in-place one then writes only into that new tensor, never into an input or a view, and
    nothing can change it between the activation and the concatenation)."""
    k = kind(n, gm) if n.op in CALLS else None
    if k not in _POSITION_FREE or len(n.args) != 1 or set(n.kwargs) - {"inplace"} or not single_use(n):
        return None
    x = n.args[0]
    return (k, x) if _owned(x, gm) else None


def activation_after_cat(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``cat([f(a), f(b), ...])`` -> ``f(cat([a, b, ...]))`` for f relu or relu6 applied to
    every part. (exact)

    The concatenation only moves elements and f gives each element's value from that element
    alone (NaN stays NaN), so both orders produce the same tensor bit for bit. One activation
    pass over the result instead of one launch per part (SqueezeNet's fire modules)."""
    out = []
    for n in list(gm.graph.nodes):
        if n.op != "call_function" or n.target is not torch.cat or not n.args or not isinstance(n.args[0], (list, tuple)):
            continue
        parts = n.args[0]
        found = [_activation_input(p, gm) if isinstance(p, fx.Node) else None for p in parts]
        if len(parts) < 2 or any(f is None for f in found) or len({f[0] for f in found}) != 1:
            continue
        k = found[0][0]
        with gm.graph.inserting_before(n):
            joined = gm.graph.call_function(torch.cat, ([f[1] for f in found], *n.args[1:]), dict(n.kwargs))
            new = gm.graph.call_function(torch.relu if k == "relu" else F.relu6, (joined,))
        n.replace_all_uses_with(new)
        out.append(Rewrite("activation-after-cat", n.name, f"one {k} after {n.name} instead of {len(parts)}"))
    return out


_ADAPTIVE = {"AdaptiveAvgPool1d": 1, "AdaptiveAvgPool2d": 2, "AdaptiveAvgPool3d": 3, "AdaptiveMaxPool1d": 1,
             "AdaptiveMaxPool2d": 2, "AdaptiveMaxPool3d": 3, "adaptive_avg_pool1d": 1, "adaptive_avg_pool2d": 2,
             "adaptive_avg_pool3d": 3}


def drop_identity_pooling(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """An adaptive average or max pooling whose output has its input's shape -> its input.
    (exact; for the traced input shapes, behind the shape guard)

    An adaptive pooling from n to n positions has windows [floor(i n / n), ceil((i + 1) n / n))
    = [i, i + 1): one element each, whose mean (x / 1) and maximum are the element itself, NaN
    included. The shapes are those of the traced inputs (EfficientNet-B2 pools maps that are
    already 1x1 for its input size), so the candidate checks them on every call and sends
    other shapes to the reference's forward. The input must be a tensor nothing else reads
    (`_owned`): the pooling's users may write into what they now get. A max pooling that also
    returns indices is left alone."""
    out = []
    for n in list(gm.graph.nodes):
        dims = _ADAPTIVE.get(kind(n, gm)) if n.op in CALLS else None
        mod = module_of(n, gm)
        if dims is None or not n.args or not isinstance(n.args[0], fx.Node):
            continue
        if getattr(mod, "return_indices", False) or (mod is None and arg(n, 2, "return_indices", False) is not False):
            continue
        x = n.args[0]
        shape = node_shape(x)
        if not _owned(x, gm) or shape is None or node_shape(n) != shape or len(shape) < dims + 1 or node_dtype(x) not in (torch.float32, torch.float64):
            continue
        n.replace_all_uses_with(x)
        gm.graph.erase_node(n)
        out.append(Rewrite("identity-pooling", n.name, f"{n.name} pools {tuple(shape[-dims:])} positions to as many: "
                                                       "the identity", traced_shapes=True))
    return out


STRUCTURE_RULES = (merge_sibling_layers, activation_after_cat, drop_identity_pooling)
