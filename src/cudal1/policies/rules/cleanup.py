"""Work the forward does twice or for nothing: common subexpressions, dead values, copies.

All three are **exact**: the values the forward returns are computed by the same operators on
the same operands. Only pure calls are touched (`graph_utils.is_pure`: no random numbers, no
in-place writes, no running statistics), so no side effect is dropped or merged.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import fx

from .analysis import tensor_meta
from .graph_utils import CALLS, Rewrite, is_pure, kind, output_node, reaches
from .intervals import VIEWS

# Bookkeeping nodes: merging or dropping them saves no work, so it is done but not reported.
_TRIVIAL = VIEWS | {"getattr", "getitem", "size", "dim", "get_attr", "tensor"}


def _does_work(n: fx.Node, gm: fx.GraphModule) -> bool:
    """A call that computes a tensor (not a view, a size or Python arithmetic on sizes)."""
    return n.op in CALLS and tensor_meta(n) is not None and kind(n, gm) not in _TRIVIAL


def _key(v):
    """A hashable stand-in for an argument (lists, slices and dicts included)."""
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, *(_key(a) for a in v))
    if isinstance(v, slice):
        return ("slice", _key(v.start), _key(v.stop), _key(v.step))
    if isinstance(v, dict):
        return ("dict", *sorted((k, _key(a)) for k, a in v.items()))
    if isinstance(v, float) and v != v:
        return ("nan",)
    if isinstance(v, (fx.Node, int, float, str, bool, type(None), torch.dtype, torch.device, torch.memory_format)):
        return (type(v).__name__, v)
    raise TypeError(type(v))


def merge_common_subexpressions(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """Two calls of the same pure operator on the same operands are computed once. (exact)

    Skipped in graphs with in-place operators (one of two equal values may be written later)."""
    if ctx["has_inplace"]:
        return []
    seen: dict = {}
    out = []
    for n in list(gm.graph.nodes):
        if n.op == "get_attr":
            key = ("get_attr", n.target)
        elif n.op in CALLS and is_pure(n, gm):
            try:
                key = (n.op, n.target if n.op != "call_function" else id(n.target), _key(n.args), _key(n.kwargs))
            except TypeError:
                continue
        else:
            continue
        first = seen.setdefault(key, n)
        if first is n:
            continue
        n.replace_all_uses_with(first)
        gm.graph.erase_node(n)
        if _does_work(first, gm):
            out.append(Rewrite("common-subexpression", n.name, f"{n.name} computes {first.name} again ({kind(first, gm)}): reused"))
    return out


def drop_dead_code(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """A pure call whose value nothing uses is not computed. (exact)

    A BatchNorm that nobody reads still updates its running statistics and a random operator
    still advances the generator: neither is pure, both stay."""
    out = []
    for n in reversed(list(gm.graph.nodes)):
        if n.op in CALLS and not n.users and is_pure(n, gm):
            k, work = kind(n, gm), _does_work(n, gm)
            gm.graph.erase_node(n)
            if work:
                out.append(Rewrite("dead-code", n.name, f"{n.name} ({k}) is never used"))
    return out


def _reaches_output(n: fx.Node, gm: fx.GraphModule) -> bool:
    """``n``'s value (or a view of it) is returned by the forward."""
    out = output_node(gm)
    return reaches(n, lambda m: [u for u in m.users if u is out or kind(u, gm) in VIEWS | {"getitem"}], lambda m: m is out)


def drop_redundant_clones(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """``y = x.clone()`` is x when nothing writes in place: the copy holds the same values and
    no one can tell them apart. (exact) Not applied to a clone the forward returns (the caller
    may write into it) or in graphs with in-place operators."""
    if ctx["has_inplace"]:
        return []
    out = []
    for n in list(gm.graph.nodes):
        if not (n.op in ("call_function", "call_method") and kind(n, gm) == "clone" and len(n.args) == 1 and not n.kwargs):
            continue
        if not isinstance(n.args[0], fx.Node) or _reaches_output(n, gm):
            continue
        src = n.args[0]
        n.replace_all_uses_with(src)
        gm.graph.erase_node(n)
        out.append(Rewrite("redundant-clone", n.name, f"{n.name} copies {src.name}, which nothing writes: not copied"))
    return out


# dead code first: any rule that fires recompiles, which drops dead values without saying so
CLEANUP_RULES = (drop_dead_code, merge_common_subexpressions, drop_redundant_clones)
