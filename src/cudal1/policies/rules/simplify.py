"""Sound algebraic simplification of a reference's FX graph.

Every rule rewrites only what holds for EVERY input and every weight: nothing is inferred from
sample values. Each rule's docstring gives the argument, including what happens to NaN and
+-inf. Four standards are used (docs/optimizer.md), and each rule says which one it meets;
the rules here use the first two, the library and layout rewrites (`activations`, `rowwise`,
`norms`, `attention`, `linalg`, `structure`) also **same function** (a fused function with the
same special values, finite values within a few ulps) and **reassociated** (equal in real
arithmetic, another order of the same sums in float32):

* **exact**: the rewritten value equals the original bit for bit (up to the sign of zero),
  NaN and infinities included.
* **NaN-relaxed**: the rewritten value equals the original at every position where the original
  is not NaN; where the original is NaN the rewrite may give a number. The judge (like
  ``torch.allclose(equal_nan=True)``) compares positions where the reference is NaN as equal,
  and the reverse never happens: a NaN-relaxed rewrite never produces a NaN where the
  original is a number. Such rewrites are only applied when every path from the rewritten
  value to the output goes through operators that keep NaN (``intervals.NAN_PROPAGATING`` and
  ``NAN_SPREADING``): then an output position that is a number in the original depended only on
  rewritten positions that were numbers, where the rewrite is exact.

Rules that would return an alias of an input (a reduction over a size-1 dim is the identity)
are skipped in graphs with in-place operators, and an output that ends up aliasing an input or
a parameter is cloned. A rewrite that holds only for the traced input shapes says so
(`Rewrite.traced_shapes`), and the candidate then checks them (`tracing.shape_guard`).
"""

from __future__ import annotations

import copy
import operator
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch
from torch import fx
from torch.fx.passes.shape_prop import ShapeProp

from .activations import ACTIVATIONS
from .analysis import TracedTask, node_dtype, node_shape
from .attention import ATTENTION
from .batchnorm import fold_eval_batch_norm
from .cleanup import CLEANUP_RULES
from .commute import elementwise_before_repeat, move_monotone_after_max_pool, pool_before_pointwise_conv
from .codegen import GraphForward, Helper, graph_forward, with_guard
from .folding import FOLD_FUNCTION, fold_weight_values
from .graph_utils import (
    KeptValues,
    Rewrite,
    arg,
    graph_has_inplace,
    is_float_tensor,
    kind,
    module_of,
    output_node,
    placeholders,
    recompile,
    reaches,
    reduction_dims,
)
from .formulas import rewrite_formulas
from .intervals import VIEWS, analyze, nan_keeping_to_output
from .linalg import LINALG_RULES
from .norms import NORMS
from .rowwise import ROWWISE
from .runtime import _PinnedShapes, _WeightValues, helper_source
from .shapes import (
    cancel_transposes,
    drop_identity_dropout,
    merge_reshapes,
    reduce_over_size1_dims,
    softmax_over_size1_dim,
)
from .structure import STRUCTURE_RULES
from .tracing import shape_guard


@dataclass
class Simplified:
    graph_module: fx.GraphModule
    rewrites: list[Rewrite]
    helpers: list[Helper] = field(default_factory=list)
    extra_helper_sources: list[str] = field(default_factory=list)
    init_lines: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    shape_guard: str | None = None  # `tracing.shape_guard`: the graph holds for the traced shapes only

    def forward(self, method_name: str) -> GraphForward:
        gf = graph_forward(self.graph_module, method_name, self.helpers)
        gf.method = with_guard(gf.method, self.shape_guard)
        gf.helpers = self.extra_helper_sources + gf.helpers
        gf.init_lines += self.init_lines
        gf.imports = self.imports + gf.imports
        return gf


# ---------------------------------------------------------------------------------------- rules


def diag_matmul(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """diag(v) @ B is v[:, None] * B; B @ diag(v) is B * v. (NaN-relaxed)

    (diag(v) @ B)[i, j] = sum_k diag(v)[i, k] B[k, j] = v[i] B[i, j] + sum_{k != i} 0 * B[k, j].
    When column j of B is finite every extra term is an exact (signed) zero, so the sum is
    v[i] B[i, j] exactly (adding zeros does not round). When some B[k, j] is inf or NaN the
    original is NaN (0 * inf = NaN) while the rewrite may be a number: a NaN-relaxed
    difference. The rewrite is NaN where the original's own term v[i] B[i, j] is, so it never
    invents a NaN. Applied only when v is 1-D (diag of a 2-D tensor extracts a diagonal) with
    offset 0, B has at least 2 dims, and the result feeds NaN-keeping operators."""
    out = []
    for n in list(gm.graph.nodes):
        k = kind(n, gm)
        if k not in ("matmul", "mm") or n.op != "call_function" or len(n.args) != 2:
            continue
        a, b = n.args
        for side, (d, other) in (("left", (a, b)), ("right", (b, a))):
            if not (isinstance(d, fx.Node) and d.op == "call_function" and kind(d, gm) == "diag"):
                continue
            v = d.args[0]
            if arg(d, 1, "diagonal", 0) != 0 or node_shape(v) is None or len(node_shape(v)) != 1:
                continue
            if node_shape(other) is None or len(node_shape(other)) < 2 or node_dtype(v) != node_dtype(other):
                continue
            if not nan_keeping_to_output(n, gm):
                continue
            with gm.graph.inserting_before(n):
                if side == "left":
                    col = gm.graph.call_method("unsqueeze", (v, -1))
                    new = gm.graph.call_function(operator.mul, (col, other))
                else:
                    new = gm.graph.call_function(operator.mul, (other, v))
            n.replace_all_uses_with(new)
            gm.graph.erase_node(n)
            out.append(Rewrite("diag-matmul", n.name, f"diag({v.name}) matmul as a broadcast multiply ({side})"))
            break
    return out


def reduce_after_linear(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """sum/mean over the output features of a linear layer (or the output channels of a
    convolution) is one linear layer (convolution) with the summed/averaged weight and bias.
    (exact in real arithmetic; in floating point a reordered sum, NaN-relaxed for infinities)

    sum_j (x W^T + b)_j = x (sum_j W_j)^T + sum_j b_j by linearity, and the same per output
    position for a convolution with groups=1 (a sum over output channels of correlations with
    each filter is the correlation with the summed filter); mean divides both by the count.
    Floating point only changes the order of the additions, as choosing another GEMM or
    convolution algorithm does. With infinite inputs: the reference is a number only if every
    infinite product in the double sum has one sign s (else some output or the final sum is
    inf - inf = NaN, and a zero weight meeting an infinite input gives NaN); then every
    infinite column's summed weight times its input also has sign s and the rewrite gives the
    same s*inf. The two can differ when a finite partial sum overflows float32 in one order and
    not the other (inputs near 1e38). The weight reduction depends on the weights alone, so
    `folding.fold_weight_values` keeps it between calls and recomputes it when a weight changes."""
    out = []
    for n in list(gm.graph.nodes):
        k = kind(n, gm)
        if k not in ("sum", "mean") or n.op not in ("call_function", "call_method") or "dtype" in n.kwargs:
            continue
        src = n.args[0] if n.args else None
        if not isinstance(src, fx.Node) or src.op != "call_module" or len(src.users) != 1:
            continue
        mod = module_of(src, gm)
        dim = arg(n, 1, "dim")
        dims = reduction_dims(n, dim) if isinstance(dim, (int, list, tuple)) and not isinstance(dim, bool) else None
        keepdim = arg(n, 2, "keepdim", False)
        shape = node_shape(src)
        if not dims or len(dims) != 1 or shape is None or not isinstance(keepdim, bool) or len(n.args) > 3:
            continue
        if isinstance(mod, torch.nn.Linear):
            if dims[0] != len(shape) - 1:
                continue
            fn, extra = torch.nn.functional.linear, {}
        elif type(mod) in (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d):
            if dims[0] != 1 or len(shape) < 3 or mod.groups != 1 or mod.padding_mode != "zeros" or isinstance(mod.padding, str):
                continue
            fn = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[len(shape) - 2]
            extra = {"stride": tuple(mod.stride), "padding": tuple(mod.padding), "dilation": tuple(mod.dilation)}
        else:
            continue
        if not is_float_tensor(src):
            continue
        x = src.args[0]
        with gm.graph.inserting_before(n):
            w = gm.graph.get_attr(f"{src.target}.weight")
            w_red = gm.graph.call_method(k, (w,), {"dim": 0, "keepdim": True})
            b_red = None
            if mod.bias is not None:
                b = gm.graph.get_attr(f"{src.target}.bias")
                b_red = gm.graph.call_method(k, (b,), {"dim": 0, "keepdim": True})
            new = gm.graph.call_function(fn, (x, w_red, b_red), extra)
            if not keepdim:
                new = gm.graph.call_method("squeeze", (new, dims[0]))
        n.replace_all_uses_with(new)
        gm.graph.erase_node(n)
        gm.graph.erase_node(src)
        out.append(Rewrite("reduce-after-linear", n.name, f"{k} over the outputs of {src.target} ({type(mod).__name__}) "
                           f"is one {type(mod).__name__} with the {k} of its weights"))
    return out


_CHEAP_CONSTANTS = {"tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "pinned_value"}


def replace_pinned_values(gm: fx.GraphModule, ctx: Mapping[str, object]) -> tuple[list[Rewrite], fx.GraphModule | None]:
    """A value the interval analysis pins to one number c is torch.full(shape, c). (exact when
    the pinned interval excludes NaN, else NaN-relaxed)

    `intervals.analyze` gives each value an interval containing every element it can take
    for ANY inputs and weights (inputs start at [-inf, inf] with NaN). When lo == hi == c,
    every element is c, or NaN when the NaN flag is set (then the rewrite is NaN-relaxed and
    needs NaN-keeping operators down to the output, see the module docstring). The shape and
    dtype come from running the original graph once per input signature
    (`runtime._PinnedShapes`), so the constant is right for every input shape; the value
    c was computed by torch itself on one element in the value's dtype.

    Returns the rewrites and the shapes function (the original graph restricted to the pinned
    values), which the graph's ``_pinned_shapes`` attribute runs; the caller attaches it."""
    if ctx["has_inplace"]:
        return [], None
    env = analyze(gm)
    tensor_inputs = [p for p in placeholders(gm) if node_shape(p) is not None]
    if not tensor_inputs:
        return [], None
    chosen = []
    for n in gm.graph.nodes:
        if n.op in ("placeholder", "get_attr", "output") or kind(n, gm) in _CHEAP_CONSTANTS:
            continue
        iv = env.get(n)
        if iv is None or not iv.point or not is_float_tensor(n) or (n.op == "call_method" and n.target == "full"):
            continue
        if not any(not env[u].point or u.op == "output" for u in n.users):
            continue  # a later pinned value replaces it
        if not _has_data_ancestor(n):
            continue
        if iv.nan and not nan_keeping_to_output(n, gm):
            continue
        chosen.append((n, iv))
    if not chosen:
        return [], None
    # The shapes function: the current graph restricted to the chosen values.
    shape_graph = fx.Graph()
    val_map: dict = {}
    shape_graph.graph_copy(gm.graph, val_map)
    shape_graph.output(tuple(val_map[n] for n, _ in chosen))
    shapes_gm = fx.GraphModule(gm, shape_graph)
    shapes_gm.graph.eliminate_dead_code()
    shapes_gm.recompile()
    first = next(n for n in gm.graph.nodes if n.op != "placeholder")
    with gm.graph.inserting_before(first), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a plain attribute, not a parameter or submodule: intended
        pinned_node = gm.graph.get_attr("_pinned_shapes")
    inputs = tuple(placeholders(gm))
    out = []
    for i, (n, iv) in enumerate(chosen):
        with gm.graph.inserting_before(n):
            new = gm.graph.create_node("call_method", "full", (pinned_node, inputs, i, iv.value), name=f"pinned_{n.name}")
        n.replace_all_uses_with(new)
        out.append(Rewrite("pinned-value", n.name, f"{n.name} is {iv.value!r} for every input{' (NaN-relaxed)' if iv.nan else ''}"))
    return out, shapes_gm


def _has_data_ancestor(n: fx.Node) -> bool:
    return reaches(n, lambda m: m.all_input_nodes, lambda m: m.op in ("placeholder", "get_attr"))


LIBRARY_FORMULAS = ATTENTION + ROWWISE + NORMS + ACTIVATIONS


def fused_library_functions(gm: fx.GraphModule, ctx: Mapping[str, object]) -> list[Rewrite]:
    """Written-out attention, softmax, norms and activations -> the torch function that computes
    them in one pass (`attention`, `rowwise`, `norms`, `activations`; each rule's standard is
    in its docstring)."""
    return rewrite_formulas(gm, LIBRARY_FORMULAS)


RULES = (
    *CLEANUP_RULES,
    drop_identity_dropout,
    reduce_over_size1_dims,
    softmax_over_size1_dim,
    diag_matmul,
    reduce_after_linear,
    cancel_transposes,
    merge_reshapes,
    fused_library_functions,
    *LINALG_RULES,
    move_monotone_after_max_pool,
    pool_before_pointwise_conv,
    elementwise_before_repeat,
    *STRUCTURE_RULES,
    fold_eval_batch_norm,  # last: the layout rules read the BatchNorm modules it replaces
)


def _aliases_input(node, gm) -> bool:
    while isinstance(node, fx.Node):
        if node.op in ("placeholder", "get_attr"):
            return True
        if kind(node, gm) in VIEWS - {"clone", "contiguous", "to", "float"} or kind(node, gm) == "getitem" and node_shape(node) is not None:
            node = node.args[0]
            continue
        return False
    return False


def _clone_aliased_outputs(gm: fx.GraphModule, original_aliasing: list[bool]) -> list[Rewrite]:
    out_node = output_node(gm)
    outs = out_node.args[0]
    flat = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    changed = []
    for i, o in enumerate(flat):
        was = original_aliasing[i] if i < len(original_aliasing) else True
        if isinstance(o, fx.Node) and _aliases_input(o, gm) and not was:
            with gm.graph.inserting_before(out_node):
                flat[i] = gm.graph.call_method("clone", (o,))
            changed.append(Rewrite("clone-alias", o.name, f"output {i} would alias an input; cloned"))
    if changed:
        out_node.args = (type(outs)(flat) if isinstance(outs, (tuple, list)) else flat[0],)
    return changed


def _output_aliasing(gm) -> list[bool]:
    outs = output_node(gm).args[0]
    flat = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    return [isinstance(o, fx.Node) and _aliases_input(o, gm) for o in flat]


def simplify(traced: TracedTask, rules=RULES, pin_values: bool = True) -> Simplified | None:
    """Apply ``rules`` to a copy of the traced graph until nothing changes, then pin constant
    values. None when no rule applies."""
    if traced.graph_module is None:
        return None
    gm = fx.GraphModule(traced.meta_model, copy.deepcopy(traced.graph_module.graph))
    _propagate(gm, traced)
    original_aliasing = _output_aliasing(gm)
    # Read-only: a rule reports what it did through its return value, never by writing here.
    ctx = MappingProxyType({"has_inplace": graph_has_inplace(gm), "meta_model": traced.meta_model})
    rewrites: list[Rewrite] = []
    for _ in range(8):
        step = []
        for rule in rules:
            done = rule(gm, ctx)
            for kept in (k for r in done for k in r.kept):
                _attach(gm, kept.attr, _WeightValues(kept.fold_fn))
            if done:
                recompile(gm)
                _propagate(gm, traced)
                step += done
        rewrites += step
        if not step:
            break
    sources, init_lines, imports = [], [], []
    folded, fold_source, weight_values = fold_weight_values(gm, ctx)
    if folded:
        _attach(gm, "_weight_values", weight_values)
        recompile(gm)
        _propagate(gm, traced)
        rewrites += folded
        sources.append(fold_source)
        init_lines.append(f"self._weight_values = _WeightValues({FOLD_FUNCTION})")
    if pin_values:
        pinned, shapes_gm = replace_pinned_values(gm, ctx)
        if pinned:
            _attach(gm, "_pinned_shapes", _PinnedShapes(traced.meta_model, lambda model, *a: shapes_gm(*a)))
            recompile(gm)
            _propagate(gm, traced)
            rewrites += pinned
            shapes = graph_forward(shapes_gm, "_reference_values")
            imports += shapes.imports
            sources += [helper_source(_PinnedShapes),
                        "# The original graph restricted to the pinned values: run once per input signature, for their shapes.\n"
                        + shapes.method]
            init_lines.append("self._pinned_shapes = _PinnedShapes(self, _reference_values)")
    if not rewrites:
        return None
    cloned = _clone_aliased_outputs(gm, original_aliasing)
    if cloned:
        recompile(gm)
        _propagate(gm, traced)
        rewrites += cloned
    helpers, kept = _still_used(gm, rewrites)
    init_lines = [k.init_line() for k in kept] + init_lines
    if folded or kept:
        sources.insert(0, helper_source(_WeightValues))
    guard = traced.shape_guard
    if guard is None and any(r.traced_shapes for r in rewrites):
        guard = shape_guard(gm, traced.input_values)
    return Simplified(gm, rewrites, helpers, sources, init_lines, imports, guard)


def _still_used(gm: fx.GraphModule, rewrites: list[Rewrite]) -> tuple[list[Helper], list[KeptValues]]:
    """The helpers and kept weight values that ``rewrites`` returned and the final graph still
    calls or reads (a later rule may have replaced the node that used one), each once."""
    called = {n.target for n in gm.graph.nodes if n.op == "call_function"}
    read = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    helpers = [h for h in dict.fromkeys(h for r in rewrites for h in r.helpers) if h.fn in called]
    kept = [k for k in dict.fromkeys(k for r in rewrites for k in r.kept) if k.attr in read]
    return helpers, kept


def _attach(gm: fx.GraphModule, name: str, holder) -> None:
    """Give ``simplify``'s own copy of the graph module the runtime holder its ``get_attr``
    nodes read (for the analysis runs here; the candidate builds its own in ``__init__``)."""
    setattr(gm, name, holder)


def _propagate(gm: fx.GraphModule, traced: TracedTask) -> None:
    ShapeProp(gm).propagate(*traced.input_values)
