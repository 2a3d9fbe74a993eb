"""Reading a reference program: its embeddable source, its FX graph with shapes, its signature.

Everything here runs on the ``meta`` device: no real memory is allocated even for full-size
tasks, and no random number generator is touched (meta tensors draw nothing), so tracing a
task never changes what the judge later sees.
"""

from __future__ import annotations

import ast
import copy
import logging
import operator
from dataclasses import dataclass, field

import torch
from torch import fx
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from ...tasks.contract import Task, exec_task_module
from .tracing import shape_guard, trace_model

log = logging.getLogger(__name__)

# Names a task defines for the harness, never for the model: not embedded in candidates.
HARNESS_NAMES = {"get_inputs", "get_init_inputs", "SMOKE"}


@dataclass
class TracedTask:
    """A task read for the optimizer. ``graph_module`` is None when FX cannot trace ``Model``."""

    task: Task
    model_source: str  # imports, Model and its helpers: the text a candidate embeds
    init_args: list
    input_values: list  # meta tensors (or plain values) matching get_inputs()
    graph_module: fx.GraphModule | None = None
    trace_error: str | None = None
    meta_model: torch.nn.Module | None = None
    notes: list[str] = field(default_factory=list)
    shape_guard: str | None = None  # set when the graph holds only for the task's input shapes (`tracing`)

    @property
    def traced(self) -> bool:
        return self.graph_module is not None

    def op_kinds(self) -> tuple[str, ...]:
        """Sorted set of operator kinds in the graph (``Linear``, ``matmul``, ``add``...)."""
        if self.graph_module is None:
            return ("untraced",)
        return tuple(sorted({op_kind(n, self.graph_module) for n in self.graph_module.graph.nodes
                             if n.op in ("call_function", "call_method", "call_module")}))

    @property
    def signature(self) -> str:
        """The operator signature that the strategy ordering is learned over."""
        return "+".join(self.op_kinds())

    def has_convolution(self) -> bool:
        return any(k.startswith(("Conv", "conv")) for k in self.op_kinds())

    def tensor_inputs(self) -> list[torch.Tensor]:
        return [v for v in self.input_values if isinstance(v, torch.Tensor)]

    def all_float32(self) -> bool:
        return all(t.dtype == torch.float32 for t in self.tensor_inputs())


def op_kind(node: fx.Node, gm: fx.GraphModule | None = None) -> str:
    """A short, stable name for what a node does."""
    if node.op == "call_module" and gm is not None:
        return type(gm.get_submodule(node.target)).__name__
    if node.op == "call_method":
        return str(node.target)
    if node.op == "call_function":
        t = node.target
        if t is operator.getitem:
            return "getitem"
        name = getattr(t, "__name__", str(t))
        return name.lstrip("_")
    return node.op


def tensor_meta(node) -> TensorMetadata | None:
    if not isinstance(node, fx.Node):
        return None
    tm = node.meta.get("tensor_meta")
    return tm if isinstance(tm, TensorMetadata) else None


def node_shape(node) -> tuple[int, ...] | None:
    tm = tensor_meta(node)
    return tuple(tm.shape) if tm is not None else None


def node_dtype(node):
    tm = tensor_meta(node)
    return tm.dtype if tm is not None else None


def embeddable_model_source(source: str) -> str:
    """The part of a task file a candidate embeds: imports, classes, helper functions, and the
    module constants they use, without ``get_inputs``/``get_init_inputs``/``SMOKE`` (the
    candidate must not carry the harness: inputs come from the reference only)."""
    tree = ast.parse(source)
    kept: list[ast.stmt] = []
    assigns: dict[str, ast.stmt] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            kept.append(stmt)
        elif isinstance(stmt, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            if stmt.name not in HARNESS_NAMES:
                kept.append(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id not in HARNESS_NAMES:
                    assigns[t.id] = stmt
    # Module constants referenced (transitively) by the kept definitions.
    needed: set[str] = set()
    frontier = [n.id for s in kept for n in ast.walk(s) if isinstance(n, ast.Name)]
    while frontier:
        name = frontier.pop()
        if name in assigns and name not in needed:
            needed.add(name)
            frontier.extend(n.id for n in ast.walk(assigns[name]) if isinstance(n, ast.Name))
    order = {id(s): i for i, s in enumerate(tree.body)}
    chosen = sorted(kept + [assigns[n] for n in needed], key=lambda s: order[id(s)])
    seen: set[int] = set()
    parts = []
    for stmt in chosen:
        if id(stmt) in seen:
            continue
        seen.add(id(stmt))
        parts.append(ast.get_source_segment(source, stmt) or ast.unparse(stmt))
    return "\n\n".join(parts) + "\n"


def _to_meta(value):
    if isinstance(value, torch.Tensor):
        return torch.empty_like(value, device="meta")
    return value


def _build_on_meta(module, init_args):
    """``Model(*init_args)`` with its weights on ``meta``. A constructor that reads a value
    (``.item()``) cannot run on meta: it runs on the CPU with the random generator's state
    restored afterwards, and the weights then move to meta."""
    try:
        with torch.device("meta"):
            return module.Model(*init_args)
    except Exception:  # noqa: BLE001 - retried on the CPU
        with torch.random.fork_rng(devices=[]):
            return module.Model(*init_args).to("meta")


def trace_task(task: Task) -> TracedTask:
    """Execute the task (sizes from ``task.size``), build ``Model`` and its inputs on ``meta``,
    and trace ``forward`` with FX (`tracing.trace_model`), recording every node's shape and dtype."""
    module = exec_task_module(task.source, task.size, module_name="cudal1_rules_trace")
    with torch.device("meta"):
        init_args = list(module.get_init_inputs())
        inputs = [_to_meta(v) for v in module.get_inputs()]
    model = _build_on_meta(module, init_args)
    traced = TracedTask(task=task, model_source=embeddable_model_source(task.source),
                        init_args=init_args, input_values=inputs, meta_model=model)
    try:
        gm, specialized = trace_model(model, inputs)
        ShapeProp(gm).propagate(*inputs)
    except Exception as e:  # noqa: BLE001 - an untraceable model only disables graph rewrites
        traced.trace_error = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        log.info("FX cannot trace %s: %s", task.id, traced.trace_error)
        return traced
    _literal_constants(gm)
    ShapeProp(gm).propagate(*inputs)
    traced.graph_module = gm
    if specialized:
        traced.shape_guard = shape_guard(gm, inputs)
        traced.notes.append("traced at the task's input shapes (a shape is used as a number)")
    return traced


def _literal_constants(gm: fx.GraphModule) -> None:
    """``torch.tensor(0.0)`` written in forward is captured by tracing as an attribute
    (``_tensor_constant0``) that the candidate would not have; one-element ones become the
    ``torch.tensor(value, dtype=...)`` call again (anything larger makes codegen give up)."""
    for n in list(gm.graph.nodes):
        if n.op != "get_attr" or not str(n.target).startswith("_tensor_constant"):
            continue
        value = getattr(gm, n.target, None)
        if not isinstance(value, torch.Tensor) or value.numel() != 1 or value.is_meta or value.dim() != 0:
            continue
        with gm.graph.inserting_before(n):
            new = gm.graph.call_function(torch.tensor, (value.item(),), {"dtype": value.dtype})
        n.replace_all_uses_with(new)
        gm.graph.erase_node(n)
    gm.recompile()


def copy_graph_module(gm: fx.GraphModule) -> fx.GraphModule:
    """A copy whose graph can be rewritten; node metadata (shapes) is kept."""
    new = fx.GraphModule(gm, copy.deepcopy(gm.graph))
    return new
