"""Small helpers for reading FX nodes uniformly (functions, methods and modules alike)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from .analysis import node_shape, tensor_meta
from .codegen import Helper

# nn modules that are a plain function of their input, by canonical kind name.
MODULE_KINDS = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.GELU: "gelu",
    nn.SiLU: "silu", nn.Mish: "mish", nn.Softplus: "softplus", nn.ELU: "elu", nn.LeakyReLU: "leaky_relu",
    nn.Hardtanh: "hardtanh", nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid",
    nn.Softmax: "softmax", nn.LogSoftmax: "log_softmax", nn.Identity: "identity",
    nn.Dropout: "dropout", nn.Dropout1d: "dropout", nn.Dropout2d: "dropout2d", nn.Dropout3d: "dropout2d",
    nn.Linear: "linear", nn.Conv1d: "conv", nn.Conv2d: "conv", nn.Conv3d: "conv",
    nn.ConvTranspose1d: "conv_transpose", nn.ConvTranspose2d: "conv_transpose", nn.ConvTranspose3d: "conv_transpose",
    nn.LayerNorm: "layer_norm", nn.GroupNorm: "group_norm", nn.BatchNorm1d: "batch_norm",
    nn.BatchNorm2d: "batch_norm", nn.BatchNorm3d: "batch_norm", nn.InstanceNorm2d: "instance_norm",
    nn.MaxPool1d: "max_pool", nn.MaxPool2d: "max_pool", nn.MaxPool3d: "max_pool",
    nn.AvgPool1d: "avg_pool", nn.AvgPool2d: "avg_pool", nn.AvgPool3d: "avg_pool",
}
if hasattr(nn, "RMSNorm"):
    MODULE_KINDS[nn.RMSNorm] = "rms_norm"

_FUNCTION_ALIASES = {
    "iadd": "add", "isub": "sub", "imul": "mul", "itruediv": "truediv", "div": "truediv",
    "divide": "truediv", "multiply": "mul", "subtract": "sub", "clip": "clamp", "amax": "amax",
    "conv1d": "conv", "conv2d": "conv", "conv3d": "conv", "conv_transpose1d": "conv_transpose",
    "conv_transpose2d": "conv_transpose", "conv_transpose3d": "conv_transpose", "negative": "neg",
    "max_pool1d": "max_pool", "max_pool2d": "max_pool", "max_pool3d": "max_pool",
    "avg_pool1d": "avg_pool", "avg_pool2d": "avg_pool", "avg_pool3d": "avg_pool", "dropout1d": "dropout",
    "dropout3d": "dropout2d", "relu_": "relu",
}

INPLACE_FUNCTIONS = {operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.setitem}
CALLS = ("call_function", "call_method", "call_module")


@dataclass(frozen=True)
class KeptValues:
    """A `runtime._WeightValues` of ``fold_fn`` that a rewritten graph reads as ``self.<attr>``
    (a ``get_attr`` node; `folding.kept_values` makes both). `simplify` attaches one to its own
    graph module for the analysis runs there; the candidate creates its own in ``__init__``."""

    attr: str
    fold_fn: Callable

    def init_line(self) -> str:
        return f"self.{self.attr} = _WeightValues({self.fold_fn.__name__})"


@dataclass(frozen=True)
class Rewrite:
    """One applied rule: its name, the node it rewrote, and what it did; plus what the candidate
    file must add for the rewritten graph to run. Rules report these here and nowhere else (the
    context `simplify` passes them is read-only): the module-level ``helpers`` the new nodes call,
    the ``kept`` weight values they read, and whether the rewrite holds only for the traced
    input shapes (the candidate then checks them: `tracing.shape_guard`)."""

    rule: str
    node: str
    detail: str
    helpers: tuple[Helper, ...] = field(default=(), compare=False, repr=False)
    kept: tuple[KeptValues, ...] = field(default=(), compare=False, repr=False)
    traced_shapes: bool = field(default=False, compare=False, repr=False)  # holds for the traced input shapes only

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


def kind(node: fx.Node, gm: fx.GraphModule) -> str:
    """Canonical operator name: ``torch.relu``, ``F.relu``, ``x.relu()`` and ``nn.ReLU`` are all ``relu``."""
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        return MODULE_KINDS.get(type(mod), type(mod).__name__)
    if node.op == "call_method":
        name = str(node.target)
    elif node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target)).lstrip("_")
    else:
        return node.op
    return _FUNCTION_ALIASES.get(name, name)


def is_inplace(node: fx.Node, gm: fx.GraphModule) -> bool:
    """Whether a node may write into one of its inputs."""
    if node.op == "call_function" and node.target in INPLACE_FUNCTIONS:
        return True
    if node.op == "call_method" and str(node.target).endswith("_") and not str(node.target).startswith("_"):
        return True
    if node.kwargs.get("inplace") is True:
        return True
    if node.op == "call_function" and getattr(node.target, "__name__", "").endswith("_") and not getattr(node.target, "__name__", "").startswith("_"):
        return True
    return node.op == "call_module" and bool(getattr(gm.get_submodule(node.target), "inplace", False))


def graph_has_inplace(gm: fx.GraphModule) -> bool:
    return any(is_inplace(n, gm) for n in gm.graph.nodes)


def arg(node: fx.Node, index: int, name: str, default=None):
    """Argument ``index`` (counting the tensor input as 0) or keyword ``name`` of a call."""
    if name in node.kwargs:
        return node.kwargs[name]
    if index < len(node.args):
        return node.args[index]
    return default


def module_of(node: fx.Node, gm: fx.GraphModule):
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def reduction_dims(node: fx.Node, dim) -> list[int] | None:
    """Normalized, non-negative reduction dims of the node's input, or None if unknown."""
    src = node.args[0] if node.args else None
    shape = node_shape(src)
    if shape is None or dim is None:
        return None
    dims = [dim] if isinstance(dim, int) else list(dim) if isinstance(dim, (list, tuple)) else None
    if dims is None or not all(isinstance(d, int) for d in dims):
        return None
    return [d % len(shape) for d in dims] if shape else None


def is_float_tensor(node) -> bool:
    tm = tensor_meta(node)
    return tm is not None and tm.dtype.is_floating_point


def replace_node(gm: fx.GraphModule, old: fx.Node, new) -> None:
    old.replace_all_uses_with(new)
    gm.graph.erase_node(old)


# Operators whose value is not a function of their inputs alone (random, uninitialized, host reads).
IMPURE_WORDS = ("rand", "bernoulli", "dropout", "normal", "uniform", "multinomial", "poisson", "empty", "exponential")
IMPURE_KINDS = {"item", "tolist", "numpy", "cpu", "cuda", "copy_", "set_", "requires_grad_", "register_hook", "detach_"}
# Modules whose call only reads their parameters (no running statistics, no random numbers).
PURE_MODULE_KINDS = {
    "relu", "relu6", "tanh", "sigmoid", "gelu", "silu", "mish", "softplus", "elu", "leaky_relu", "hardtanh",
    "hardswish", "hardsigmoid", "softmax", "log_softmax", "identity", "linear", "conv", "conv_transpose",
    "layer_norm", "group_norm", "rms_norm", "max_pool", "avg_pool", "Flatten", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
}


def is_pure(node: fx.Node, gm: fx.GraphModule) -> bool:
    """Whether a call node's value depends only on its operands, and calling it changes nothing
    else: no random numbers, no in-place writes, no running statistics (BatchNorm and
    InstanceNorm update theirs while training), no module of unknown kind. Removing such a
    node when unused, or computing it once for two identical calls, changes no value."""
    if node.op not in CALLS or is_inplace(node, gm):
        return False
    k = kind(node, gm)
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        return k in PURE_MODULE_KINDS or (k in ("dropout", "dropout2d") and mod.p == 0)
    return k not in IMPURE_KINDS and not any(w in k for w in IMPURE_WORDS)


def recompile(gm: fx.GraphModule) -> None:
    """Drop values nobody uses (only pure ones: a dead BatchNorm still updates its statistics,
    a dead random operator still advances the generator), check and regenerate the code."""
    def keep(n: fx.Node) -> bool:
        return n.op in ("placeholder", "output") or (n.op in CALLS and not is_pure(n, gm))

    gm.graph.eliminate_dead_code(is_impure_node=keep)
    gm.graph.lint()
    gm.recompile()


def placeholders(gm: fx.GraphModule) -> list[fx.Node]:
    return [n for n in gm.graph.nodes if n.op == "placeholder"]


def output_node(gm: fx.GraphModule) -> fx.Node:
    return next(n for n in reversed(gm.graph.nodes) if n.op == "output")


def reaches(start: fx.Node, step, found) -> bool:
    """Whether a walk from ``start`` along ``step(node)`` (the nodes to visit next) meets a node
    for which ``found(node)`` holds."""
    stack, seen = [start], set()
    while stack:
        m = stack.pop()
        if m in seen:
            continue
        seen.add(m)
        if found(m):
            return True
        stack.extend(step(m))
    return False


def float_dtype(node) -> torch.dtype | None:
    tm = tensor_meta(node)
    return tm.dtype if tm is not None else None
