"""Global switches a candidate turns on, and source transformations that turn each one off.

Each switch is a technique a candidate enables in one place without it being part of its
kernels, so that removing it leaves the rest of the program as it was. The transforms work on
the AST and write the result back with ``ast.unparse`` (comments are dropped, code is kept).
`SWITCHES` lists them with the tag they ablate and what the transform does (docs/explain.md
shows the same text):

- ``cudnn-benchmark``: ``...cudnn.benchmark = True`` becomes ``= False``;
  ``cudnn.flags(benchmark=True)`` becomes ``benchmark=False``.
- ``channels-last``: ``x.to(memory_format=torch.channels_last)`` becomes ``x``;
  ``x.contiguous(memory_format=torch.channels_last)`` becomes ``x.contiguous()``; any other
  ``memory_format=torch.channels_last(_3d)`` argument is dropped.
- ``cuda-graph``: the method that replays a captured ``torch.cuda.CUDAGraph`` instead returns
  the call it captured (``with torch.cuda.graph(g): out = self.body(...)``) on its own
  arguments; ``torch.cuda.make_graphed_callables(f, ...)`` becomes ``f``;
  ``torch.compile(mode="reduce-overhead")`` becomes ``mode="default"`` and
  ``mode="max-autotune"`` becomes ``"max-autotune-no-cudagraphs"``.
- ``torch-compile``: ``torch.compile(f, ...)`` becomes ``f``; ``@torch.compile`` decorators go.
- ``lower-precision``: ``allow_tf32 = True`` becomes ``False``,
  ``set_float32_matmul_precision("high"|"medium")`` becomes ``"highest"``, and
  ``torch.autocast(...)`` gets ``enabled=False``. Explicit ``.half()`` casts are not switches.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from dataclasses import dataclass

from .source import _dotted


@dataclass(frozen=True)
class Switch:
    id: str  # the technique tag it ablates
    transform: str  # what turning it off does, in words
    apply: Callable[[ast.Module, dict], list[str]]  # edits the tree in place, returns what changed


def _aliases(tree: ast.Module) -> dict[str, str]:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _resolve(node: ast.AST, aliases: dict[str, str]) -> str:
    name = _dotted(node) or ""
    head, _, rest = name.partition(".")
    full = aliases.get(head, head)
    return f"{full}.{rest}" if rest else full


def _kw(call: ast.Call, name: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg == name), None)


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


# --- cudnn-benchmark ------------------------------------------------------------------------
def _cudnn_benchmark_off(tree: ast.Module, aliases: dict) -> list[str]:
    changed = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_true(node.value) and any(
            _resolve(t, aliases).endswith("cudnn.benchmark") for t in node.targets
        ):
            node.value = ast.Constant(False)
            changed.append(f"line {node.lineno}: cudnn.benchmark = False")
        elif isinstance(node, ast.Call) and _resolve(node.func, aliases).endswith("cudnn.flags"):
            kw = _kw(node, "benchmark")
            if kw is not None and _is_true(kw.value):
                kw.value = ast.Constant(False)
                changed.append(f"line {node.lineno}: cudnn.flags(benchmark=False)")
    return changed


# --- channels-last --------------------------------------------------------------------------
def _is_channels_last(node) -> bool:
    return (_dotted(node) or "").endswith(("channels_last", "channels_last_3d"))


class _DropChannelsLast(ast.NodeTransformer):
    def __init__(self):
        self.changed: list[str] = []

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        kw = _kw(node, "memory_format")
        if kw is None or not _is_channels_last(kw.value):
            return node
        node.keywords = [k for k in node.keywords if k is not kw]
        if isinstance(node.func, ast.Attribute) and node.func.attr == "to" and not node.args and not node.keywords:
            self.changed.append(f"line {node.lineno}: .to(memory_format=channels_last) dropped")
            return node.func.value
        self.changed.append(f"line {node.lineno}: memory_format=channels_last dropped from {ast.unparse(node.func)}()")
        return node


def _channels_last_off(tree: ast.Module, aliases: dict) -> list[str]:
    t = _DropChannelsLast()
    t.visit(tree)
    return t.changed


# --- cuda-graph -----------------------------------------------------------------------------
_GRAPH_MODES = {"reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}


def _captured_call(fn: ast.FunctionDef, tree: ast.Module, aliases: dict) -> ast.Call | None:
    """The call captured inside ``with torch.cuda.graph(...)`` anywhere in the file."""
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
            isinstance(i.context_expr, ast.Call) and _resolve(i.context_expr.func, aliases) in ("torch.cuda.graph", "torch.cuda.graphs.graph")
            for i in node.items
        ):
            for stmt in node.body:
                value = getattr(stmt, "value", None)
                if isinstance(value, ast.Call):
                    return value
    return None


def _params(fn: ast.FunctionDef) -> list[ast.expr]:
    a = fn.args
    out: list[ast.expr] = [ast.Name(x.arg) for x in (a.posonlyargs + a.args)[1:]]
    if a.vararg:
        out.append(ast.Starred(ast.Name(a.vararg.arg)))
    return out


def _cuda_graph_off(tree: ast.Module, aliases: dict) -> list[str]:
    changed = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _resolve(node.func, aliases) == "torch.compile":
            kw = _kw(node, "mode")
            if kw is not None and isinstance(kw.value, ast.Constant) and kw.value.value in _GRAPH_MODES:
                changed.append(f"line {node.lineno}: torch.compile mode {kw.value.value!r} -> {_GRAPH_MODES[kw.value.value]!r}")
                kw.value = ast.Constant(_GRAPH_MODES[kw.value.value])
    replacer = _ReplaceGraphed(aliases)
    replacer.visit(tree)
    changed += replacer.changed
    for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        replays = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "replay"]
        if not replays or not fn.args.args or fn.args.args[0].arg != "self":
            continue
        captured = _captured_call(fn, tree, aliases)
        if captured is None:
            continue
        call = ast.Call(func=copy.deepcopy(captured.func), args=_params(fn), keywords=[])
        doc = fn.body[:1] if fn.body and isinstance(getattr(fn.body[0], "value", None), ast.Constant) else []
        fn.body = doc + [ast.Return(call)]
        changed.append(f"{fn.name}(): graph replay replaced by {ast.unparse(call)}")
    return changed


class _ReplaceGraphed(ast.NodeTransformer):
    def __init__(self, aliases):
        self.aliases, self.changed = aliases, []

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        if _resolve(node.func, self.aliases) == "torch.cuda.make_graphed_callables" and node.args:
            self.changed.append(f"line {node.lineno}: make_graphed_callables({ast.unparse(node.args[0])}) -> {ast.unparse(node.args[0])}")
            return node.args[0]
        return node


# --- torch-compile --------------------------------------------------------------------------
class _DropCompile(ast.NodeTransformer):
    def __init__(self, aliases):
        self.aliases, self.changed = aliases, []

    def _is_compile(self, node) -> bool:
        target = node.func if isinstance(node, ast.Call) else node
        return _resolve(target, self.aliases) in ("torch.compile", "torch._dynamo.optimize")

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        if isinstance(node.func, ast.Call) and self._is_compile(node.func):  # torch._dynamo.optimize(...)(f)
            self.changed.append(f"line {node.lineno}: {ast.unparse(node.func)}(...) dropped")
            return node.args[0] if node.args else node
        if self._is_compile(node) and node.args:
            self.changed.append(f"line {node.lineno}: torch.compile({ast.unparse(node.args[0])}, ...) -> {ast.unparse(node.args[0])}")
            return node.args[0]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef):
        self.generic_visit(node)
        keep = [d for d in node.decorator_list if not self._is_compile(d)]
        if len(keep) != len(node.decorator_list):
            self.changed.append(f"{node.name}(): @torch.compile removed")
            node.decorator_list = keep
        return node


def _compile_off(tree: ast.Module, aliases: dict) -> list[str]:
    t = _DropCompile(aliases)
    t.visit(tree)
    return t.changed


# --- lower precision ------------------------------------------------------------------------
def _lower_precision_off(tree: ast.Module, aliases: dict) -> list[str]:
    changed = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_true(node.value) and any(
            _resolve(t, aliases).endswith("allow_tf32") for t in node.targets
        ):
            node.value = ast.Constant(False)
            changed.append(f"line {node.lineno}: {ast.unparse(node.targets[0])} = False")
        elif isinstance(node, ast.Call):
            name = _resolve(node.func, aliases)
            if name == "torch.set_float32_matmul_precision" and node.args and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value in ("high", "medium"):
                node.args[0] = ast.Constant("highest")
                changed.append(f"line {node.lineno}: set_float32_matmul_precision('highest')")
            elif name in ("torch.autocast", "torch.amp.autocast", "torch.cuda.amp.autocast", "torch.cpu.amp.autocast"):
                kw = _kw(node, "enabled")
                if kw is None:
                    node.keywords.append(ast.keyword("enabled", ast.Constant(False)))
                else:
                    kw.value = ast.Constant(False)
                changed.append(f"line {node.lineno}: autocast(enabled=False)")
    return changed


SWITCHES: tuple[Switch, ...] = (
    Switch("cudnn-benchmark", "torch.backends.cudnn.benchmark = True set to False (and cudnn.flags(benchmark=True))", _cudnn_benchmark_off),
    Switch("channels-last", "memory_format=torch.channels_last dropped (.to(memory_format=...) calls removed, "
           ".contiguous(memory_format=...) made plain .contiguous())", _channels_last_off),
    Switch("cuda-graph", "graph replay replaced by a direct call of the captured forward; make_graphed_callables(f) -> f; "
           "torch.compile CUDA-graph modes -> modes without graphs", _cuda_graph_off),
    Switch("torch-compile", "torch.compile(f) replaced by f; @torch.compile decorators removed", _compile_off),
    Switch("lower-precision", "allow_tf32 = True -> False; set_float32_matmul_precision -> 'highest'; autocast(enabled=False)",
           _lower_precision_off),
)


def switch_off(source: str, switch_id: str) -> tuple[str, list[str]] | None:
    """``source`` with one switch turned off and what changed, or None when the source does not
    turn it on (or does not parse)."""
    sw = next((s for s in SWITCHES if s.id == switch_id), None)
    if sw is None:
        raise KeyError(f"no switch {switch_id!r}; known: {', '.join(s.id for s in SWITCHES)}")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    changed = sw.apply(tree, _aliases(tree))
    if not changed:
        return None
    ast.fix_missing_locations(tree)
    return ast.unparse(tree) + "\n", changed
