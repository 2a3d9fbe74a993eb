"""Shape and view rules: rewrites that are exact for every input (`simplify` runs them).

Dropout with p = 0, reductions and softmax over size-1 dims, transposes or permutations that
undo each other, and reshapes of reshapes. Each rule's docstring gives its argument; the ones
that hold only for the traced shapes say so (`Rewrite.traced_shapes`).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping

import torch
from torch import fx

from .analysis import node_shape
from .graph_utils import Rewrite, arg, is_float_tensor, kind, module_of, reduction_dims


def drop_identity_dropout(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """Dropout with p = 0 is the identity. (exact)

    With p = 0 every element is kept and scaled by 1/(1-0) = 1, so the output equals the input
    for every input, NaN and inf included. Only p == 0 is used: KernelBench models stay in
    training mode, so dropout with p > 0 is random and is never removed."""
    out = []
    for n in list(gm.graph.nodes):
        k = kind(n, gm)
        if k not in ("dropout", "dropout2d") or n.op not in ("call_module", "call_function", "call_method"):
            continue
        mod = module_of(n, gm)
        p = mod.p if mod is not None else arg(n, 1, "p", 0.5)
        if p == 0 and not (mod is not None and mod.inplace):
            n.replace_all_uses_with(n.args[0])
            gm.graph.erase_node(n)
            out.append(Rewrite("identity-dropout", n.name, f"{n.name} (p=0) is the identity"))
    return out


_SIZE1_REDUCTIONS = {"sum", "mean", "amax", "amin", "logsumexp", "prod", "nansum", "nanmean"}


def reduce_over_size1_dims(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """A reduction over dims that all have size 1 is the identity (keepdim) or a squeeze. (exact)

    sum, mean, prod, amax, amin, max(dim)/min(dim) values and logsumexp of a single element
    equal that element: mean divides by 1, max/min pick it (NaN included), and torch's
    logsumexp computes m + log(exp(x - m)) with m = x for finite x (= x exactly, since
    exp(0) = 1 and log(1) = 0) and special-cases infinite m, returning x. Only floating
    inputs without a dtype argument (sum of an integer tensor would promote the dtype)."""
    if ctx["has_inplace"]:
        return []
    out = []
    for n in list(gm.graph.nodes):
        if n.op not in ("call_function", "call_method"):
            continue
        k = kind(n, gm)
        if "dtype" in n.kwargs or not n.args or not is_float_tensor(n.args[0]):
            continue
        if k in _SIZE1_REDUCTIONS or k in ("max", "min"):
            dim = arg(n, 1, "dim")
            if not isinstance(dim, (int, list, tuple)) or isinstance(dim, bool):
                continue
            dims = reduction_dims(n, dim)
            shape = node_shape(n.args[0])
            if not dims or shape is None or any(shape[d] != 1 for d in dims):
                continue
            keepdim = arg(n, 2, "keepdim", False)
            if not isinstance(keepdim, bool) or (len(n.args) > 3):
                continue
            x = n.args[0]
            if k in ("max", "min"):
                users = list(n.users)
                if not all(u.op == "call_function" and ((u.target is operator.getitem and u.args[1] == 0) or (u.target is getattr and u.args[1] == "values")) for u in users):
                    continue  # the indices are used
                targets = users
            else:
                targets = [n]
            with gm.graph.inserting_before(n):
                new = x if keepdim else gm.graph.call_method("squeeze", (x, tuple(dims)))
            for t in targets:
                t.replace_all_uses_with(new)
            for t in targets:
                if t is not n:
                    gm.graph.erase_node(t)
            gm.graph.erase_node(n)
            out.append(Rewrite("size1-reduction", n.name, f"{k} over size-1 dim {dims} of {x.name} is {'the identity' if keepdim else 'a squeeze'}",
                               traced_shapes=True))
    return out


def softmax_over_size1_dim(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """softmax over a size-1 dim is exp(x - x); log_softmax is x - x. (exact)

    torch computes softmax(x) = exp(x - m) / sum(exp(x - m)) with m = max over the dim; over
    one element m = x, so the result is exp(x - x) / exp(x - x): 1 for finite x, NaN for
    x = +-inf (inf - inf is NaN) or NaN. exp(x - x) is 1 and NaN at exactly the same
    positions. log_softmax = (x - m) - log(sum(exp(x - m))) = (x - x) - log(1) for finite x:
    0, NaN otherwise, as is x - x. The interval analysis then sees a value pinned to 1 (or 0)
    up to NaN, which `replace_pinned_values` may turn into a constant."""
    out = []
    for n in list(gm.graph.nodes):
        k = kind(n, gm)
        if k not in ("softmax", "log_softmax") or n.op == "placeholder":
            continue
        mod = module_of(n, gm)
        dim = mod.dim if mod is not None else arg(n, 1, "dim")
        if not isinstance(dim, int) or n.kwargs.get("dtype") is not None or not is_float_tensor(n.args[0]):
            continue
        if n.op == "call_function" and len(n.args) > 2 and n.args[2] is not None and not isinstance(n.args[2], int):
            continue  # a dtype passed positionally
        shape = node_shape(n.args[0])
        if shape is None or shape[dim % len(shape)] != 1:
            continue
        x = n.args[0]
        with gm.graph.inserting_before(n):
            diff = gm.graph.call_function(operator.sub, (x, x))
            new = gm.graph.call_function(torch.exp, (diff,)) if k == "softmax" else diff
        n.replace_all_uses_with(new)
        gm.graph.erase_node(n)
        out.append(Rewrite("size1-softmax", n.name, f"{k} over size-1 dim {dim} of {x.name} is {'exp(x - x)' if k == 'softmax' else 'x - x'}",
                           traced_shapes=True))
    return out


def _norm_dims(dims, ndim):
    return tuple(sorted(d % ndim for d in dims))


def cancel_transposes(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """transpose(transpose(y, a, b), a, b), y.t().t() and permutations that undo each other are
    y. (exact: views that move no data and compose to the identity map)"""
    out = []
    for n in list(gm.graph.nodes):
        k = kind(n, gm)
        if k not in ("transpose", "t", "permute") or n.op not in ("call_method", "call_function"):
            continue
        inner = n.args[0]
        if not isinstance(inner, fx.Node) or kind(inner, gm) != k or node_shape(inner) is None:
            continue
        ndim = len(node_shape(inner))
        y = inner.args[0]
        if k == "t":
            same = True
        elif k == "transpose":
            d1, d2 = n.args[1:3] if len(n.args) >= 3 else (None, None)
            e1, e2 = inner.args[1:3] if len(inner.args) >= 3 else (None, None)
            same = None not in (d1, d2, e1, e2) and all(isinstance(v, int) for v in (d1, d2, e1, e2)) and _norm_dims((d1, d2), ndim) == _norm_dims((e1, e2), ndim)
        else:
            p = n.args[1:] if len(n.args) > 2 else n.args[1] if len(n.args) > 1 else None
            q = inner.args[1:] if len(inner.args) > 2 else inner.args[1] if len(inner.args) > 1 else None
            if not (isinstance(p, (tuple, list)) and isinstance(q, (tuple, list)) and all(isinstance(v, int) for v in (*p, *q))):
                continue
            p = [v % ndim for v in p]
            q = [v % ndim for v in q]
            same = [q[p[i]] for i in range(ndim)] == list(range(ndim))
        if not same:
            continue
        n.replace_all_uses_with(y)
        gm.graph.erase_node(n)
        out.append(Rewrite("cancel-transposes", n.name, f"{inner.name} and {n.name} undo each other"))
    return out


def merge_reshapes(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """reshape(reshape(y, s1), s2) is reshape(y, s2). (exact: reshape keeps row-major element
    order, so the composition depends only on the final shape)"""
    out = []
    for n in list(gm.graph.nodes):
        k = kind(n, gm)
        if k not in ("view", "reshape") or n.op != "call_method":
            continue
        inner = n.args[0]
        if not isinstance(inner, fx.Node) or inner.op != "call_method" or kind(inner, gm) not in ("view", "reshape") or len(inner.users) != 1:
            continue
        if any(isinstance(a, torch.dtype) for a in n.args[1:]) or any(isinstance(a, torch.dtype) for a in inner.args[1:]):
            continue  # view(dtype) reinterprets bits
        n.args = (inner.args[0], *n.args[1:])
        if k == "view" and inner.target == "reshape":
            n.target = "reshape"
        gm.graph.erase_node(inner)
        out.append(Rewrite("merge-reshapes", n.name, f"{inner.name} folded into {n.name}"))
    return out
