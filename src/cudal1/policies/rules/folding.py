"""Constant folding of weight-only subgraphs: values computed from parameters and buffers alone.

A node whose every input is a parameter, a buffer or a literal (and which draws no random
numbers and writes nothing) has the same value on every call while the weights stay the same.
Such values (a transposed or scaled weight, the summed weight that `reduce_after_linear`
produces) are computed by one generated function and kept by `runtime._WeightValues`, which
recomputes them when a weight changes (``load_state_dict``, an optimizer step, ``.to()``) and
on every call while autograd records, so gradients still reach the weights.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Mapping

from torch import fx

from .analysis import tensor_meta
from .codegen import graph_forward
from .graph_utils import KeptValues, Rewrite, is_pure, output_node
from .runtime import _WeightValues

FOLD_FUNCTION = "_fold_weight_values"


def kept_values(gm: fx.GraphModule, prefix: str, fold_fn) -> tuple[fx.Node, KeptValues]:
    """A ``get_attr`` node (inserted at the graph's insert point) for ``self.<prefix>_<i>``, a
    `_WeightValues` of ``fold_fn``, and the `KeptValues` record the rule returns with its
    `Rewrite` (`simplify` attaches the holder; the candidate creates it in ``__init__``). The
    index is the first that no attribute or ``get_attr`` node of ``gm`` uses yet."""
    taken = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    i = 0
    while f"{prefix}_{i}" in taken or hasattr(gm, f"{prefix}_{i}"):
        i += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a plain attribute, not a parameter or submodule: intended
        return gm.graph.get_attr(f"{prefix}_{i}"), KeptValues(f"{prefix}_{i}", fold_fn)


def _pure(n: fx.Node, gm: fx.GraphModule) -> bool:
    return n.op in ("call_function", "call_method") and is_pure(n, gm)


def weight_only_nodes(gm: fx.GraphModule) -> set[fx.Node]:
    """Nodes computed from get_attr nodes (parameters, buffers) and literals alone."""
    const: set[fx.Node] = set()
    for n in gm.graph.nodes:
        if n.op == "get_attr":
            const.add(n)
        elif _pure(n, gm) and n.all_input_nodes and all(i in const for i in n.all_input_nodes):
            const.add(n)
    return const


def fold_weight_values(gm: fx.GraphModule, ctx: Mapping[str, object]):
    """Replace each weight-only value the forward uses by a lookup in `_WeightValues`. (exact)

    The folded function is the original subgraph, node for node, run on the same tensors; the
    only change is when it runs. Returns (rewrites, module-level source of the fold function,
    the `_WeightValues` that the graph's ``_weight_values`` attribute must hold for analysis
    runs here; the caller attaches it) or ([], None, None). Skipped in graphs with in-place
    operators (a later in-place write could reach a kept value) and for values that are
    themselves outputs (a caller could write into the kept tensor)."""
    if ctx["has_inplace"]:
        return [], None, None
    const = weight_only_nodes(gm)
    out = output_node(gm)
    roots = [n for n in gm.graph.nodes if n in const and n.op != "get_attr" and tensor_meta(n) is not None
             and any(u not in const for u in n.users) and out not in n.users]
    if not roots:
        return [], None, None
    needed: set[fx.Node] = set()
    stack = list(roots)
    while stack:
        m = stack.pop()
        if m not in needed:
            needed.add(m)
            stack.extend(m.all_input_nodes)
    leaves = [n for n in gm.graph.nodes if n in needed and n.op == "get_attr"]
    fold = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for leaf in leaves:
        env[leaf] = fold.placeholder(leaf.target.replace(".", "_"))
    for n in gm.graph.nodes:
        if n in needed and n.op != "get_attr":
            env[n] = fold.node_copy(n, lambda a: env[a])
    fold.output(tuple(env[r] for r in roots))
    fold_gm = fx.GraphModule(gm, fold)
    first = next(n for n in gm.graph.nodes if n.op != "placeholder")
    with gm.graph.inserting_before(first), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a plain attribute, not a parameter or submodule: intended
        holder = gm.graph.get_attr("_weight_values")
        weights = tuple(gm.graph.get_attr(leaf.target) for leaf in leaves)
        values = gm.graph.create_node("call_method", "get", (holder, weights), name="weight_values")
        kept = [gm.graph.call_function(operator.getitem, (values, i)) for i in range(len(roots))]
    rewrites = []
    for r, new in zip(roots, kept):
        r.replace_all_uses_with(new)
        rewrites.append(Rewrite("fold-weights", r.name, f"{r.name} depends on weights only ({', '.join(str(x.target) for x in leaves)}): "
                                                         "computed once, again only when a weight changes"))
    fn = graph_forward(fold_gm, FOLD_FUNCTION).method.replace(f"def {FOLD_FUNCTION}(self, ", f"def {FOLD_FUNCTION}(", 1)
    fn = fn.replace(f"def {FOLD_FUNCTION}(self)", f"def {FOLD_FUNCTION}()", 1)
    source = "# The weight-only part of the forward, node for node.\n" + fn
    return rewrites, source, _WeightValues(fold_gm)  # what analysis runs here; the candidate gets the source
