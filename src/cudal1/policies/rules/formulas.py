"""Rewriting a written-out formula into the one library function that computes it.

A `Formula` reads one pattern at a node and says which torch function replaces it;
`rewrite_formulas` applies a list of them to a graph. The patterns themselves live with their
rules (`activations`, `rowwise`, `norms`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import fx

from .codegen import Helper
from .graph_utils import CALLS, Rewrite, is_float_tensor
from .intervals import nan_keeping_to_output


@dataclass
class Match:
    """What replaces a matched node: ``target(*args, **kwargs)``, where an argument may be
    `Lazy` (built when applied); then ``wrap``, when given, builds further nodes around it and returns the
    one that replaces the match."""

    target: Callable
    args: tuple
    kwargs: dict = field(default_factory=dict)
    detail: str = ""
    nan_relaxed: bool = False  # see simplify's module docstring
    wrap: Callable[[fx.Graph, fx.Node], fx.Node] | None = None
    helper: Helper | None = None  # when ``target`` is a helper the candidate file defines


class Lazy:
    """An argument of a replacement that is built as graph nodes only when the match is applied."""

    def node(self, graph: fx.Graph):
        raise NotImplementedError


@dataclass(frozen=True)
class Trailing(Lazy):
    """``x.shape[-count:]``, read when the candidate runs (a normalized shape that follows the input)."""

    x: fx.Node
    count: int

    def node(self, graph: fx.Graph) -> fx.Node:
        shape = graph.call_function(getattr, (self.x, "shape"))
        return graph.call_function(operator.getitem, (shape, slice(-self.count, None, None)))


@dataclass(frozen=True)
class Formula:
    rule: str
    match: Callable[[fx.Node, fx.GraphModule], Match | None]


def rewrite_formulas(gm: fx.GraphModule, formulas: tuple[Formula, ...]) -> list[Rewrite]:
    """Replace every node that one of ``formulas`` matches (floating tensors only); each
    `Rewrite` names the helper its replacement calls, if any."""
    out = []
    for n in list(gm.graph.nodes):
        if n.op not in CALLS or not n.users or not is_float_tensor(n):
            continue
        for f in formulas:
            m = f.match(n, gm)
            if m is None or (m.nan_relaxed and not nan_keeping_to_output(n, gm)):
                continue
            with gm.graph.inserting_before(n):
                args = tuple(a.node(gm.graph) if isinstance(a, Lazy) else a for a in m.args)
                kwargs = {k: a.node(gm.graph) if isinstance(a, Lazy) else a for k, a in m.kwargs.items()}
                name = m.helper.name.lstrip("_") if m.helper is not None else None
                new = gm.graph.create_node("call_function", m.target, args, kwargs, name=name)
                if m.wrap is not None:
                    new = m.wrap(gm.graph, new)
            n.replace_all_uses_with(new)
            out.append(Rewrite(f.rule, n.name, m.detail, helpers=(m.helper,) if m.helper is not None else ()))
            break
    return out
