"""Detectors for hacks written in Python: streams, tensor subclasses, fallbacks, unwritten
outputs, finalizers, own inputs, reseeding (caches: detectors_caching; operator overrides:
detectors_dispatch)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .context import ScanContext, detector, matches, short, unparse

Hit = Iterator[tuple[int, str]]

STREAM_CTORS = ("torch.cuda.Stream", "torch.cuda.streams.Stream", "torch.Stream", "torch.cuda.ExternalStream",
                "torch.cuda.streams.ExternalStream")
STREAM_CONTEXTS = ("torch.cuda.stream", "torch.cuda.StreamContext", "torch.cuda.streams.StreamContext")
CURRENT_STREAM = ("torch.cuda.current_stream", "torch.cuda.default_stream")
GRAPH_CAPTURE = ("torch.cuda.graph", "torch.cuda.CUDAGraph", "torch.cuda.graphs.graph",
                 "torch.cuda.make_graphed_callables", "torch.cuda.graphs.CUDAGraph")
KERNEL_BUILDERS = ("torch.utils.cpp_extension.load_inline", "torch.utils.cpp_extension.load",
                   "cupy.RawKernel", "cupy.RawModule")
TRITON_DECORATORS = ("triton.jit", "triton.autotune", "triton.heuristics")


def _graph_scope(ctx: ScanContext, node: ast.AST) -> ast.AST:
    return ctx.enclosing_class(node) or ctx.tree


def captures_graph(ctx: ScanContext, scope: ast.AST) -> bool:
    for n in ast.walk(scope):
        if isinstance(n, ast.Call):
            if matches(ctx.qualname(n.func), GRAPH_CAPTURE):
                return True
            if isinstance(n.func, ast.Attribute) and n.func.attr == "capture_begin":
                return True
    return False


@detector
def side_stream(tree, source, ctx: ScanContext) -> Hit:
    for call, q in ctx.calls():
        if matches(q, STREAM_CTORS):
            if not captures_graph(ctx, _graph_scope(ctx, call)):
                yield call.lineno, f"{short(call)} creates a side stream"
        elif matches(q, STREAM_CONTEXTS) and call.args:
            arg = call.args[0]
            if isinstance(arg, ast.Call) and matches(ctx.qualname(arg.func), CURRENT_STREAM):
                continue
            if isinstance(arg, ast.Constant) and arg.value is None:
                continue
            if not captures_graph(ctx, _graph_scope(ctx, call)):
                yield call.lineno, f"work launched under {short(call)} runs on a side stream"


@detector
def set_stream(tree, source, ctx: ScanContext) -> Hit:
    for call, q in ctx.calls():
        if matches(q, ("torch.cuda.set_stream", "torch.cuda._set_stream_by_id", "torch.accelerator.set_stream",
                       "torch._C._cuda_setStream")):
            yield call.lineno, f"{short(call)} changes the current CUDA stream"


@detector
def tensor_subclass(tree, source, ctx: ScanContext) -> Hit:
    bases = ("torch.Tensor", "torch._C._TensorBase", "torch._C.TensorBase", "torch.tensor._Tensor")
    for node in ctx.nodes:
        if isinstance(node, ast.ClassDef):
            for b in node.bases:
                if matches(ctx.qualname(b), bases):
                    yield node.lineno, f"class {node.name} subclasses {unparse(b)}"
        elif isinstance(node, ast.Call) and ctx.is_builtin(node.func, "type") and len(node.args) == 3:
            if any(matches(ctx.qualname(e), bases) for e in ast.walk(node.args[1])):
                yield node.lineno, "type(...) builds a torch.Tensor subclass"


@detector
def make_subclass(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "_make_subclass", "_make_wrapper_subclass", "as_subclass"):
            yield node.lineno, f"{short(node)} turns a tensor into a subclass instance"
        elif isinstance(node, ast.Attribute) and node.attr == "__class__" and isinstance(node.ctx, ast.Store):
            yield node.lineno, f"assignment to {short(node)} changes an object's class"


@detector
def torch_function_override(tree, source, ctx: ScanContext) -> Hit:
    modes = ("torch.overrides.TorchFunctionMode", "torch.utils._python_dispatch.TorchDispatchMode")
    for node in ctx.nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in (
                "__torch_function__", "__torch_dispatch__"):
            yield node.lineno, f"defines {node.name}, which intercepts torch operations"
        elif isinstance(node, ast.ClassDef):
            for b in node.bases:
                if matches(ctx.qualname(b), modes):
                    yield node.lineno, f"class {node.name} subclasses {unparse(b)}, which intercepts torch operations"


# --- kernel fallbacks ----------------------------------------------------------------------
def _kernel_handles(ctx: ScanContext) -> tuple[set[str], set[str]]:
    """(expressions bound to built extensions, names of Triton kernels)."""
    ext, triton = set(), set()
    for node in ctx.nodes:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and matches(
                ctx.qualname(node.value.func), KERNEL_BUILDERS):
            ext.update(ctx.key(t) for t in node.targets)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in node.decorator_list:
                if matches(ctx.qualname(d.func if isinstance(d, ast.Call) else d), TRITON_DECORATORS):
                    triton.add(node.name)
    return ext, triton


def _kernel_call(ctx: ScanContext, node: ast.AST, ext: set[str], triton: set[str], helpers: set[str]) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    f = node.func
    if matches(ctx.qualname(f), KERNEL_BUILDERS):
        return short(node)
    if isinstance(f, ast.Attribute):
        if ctx.key(f.value) in ext or (isinstance(f.value, ast.Call) and matches(ctx.qualname(f.value.func), KERNEL_BUILDERS)):
            return short(f)
        if f.attr in helpers and isinstance(f.value, ast.Name):
            return short(f)
    if isinstance(f, ast.Subscript) and isinstance(f.value, ast.Name) and f.value.id in triton:
        return f.value.id
    if isinstance(f, ast.Name) and f.id in helpers:
        return f.id
    return None


def _helpers_calling_kernels(ctx: ScanContext, ext: set[str], triton: set[str]) -> set[str]:
    funcs = [n for n in ctx.nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    helpers: set[str] = set()
    changed = True
    while changed:
        changed = False
        for fn in funcs:
            if fn.name not in helpers and fn.name not in triton and any(
                    _kernel_call(ctx, n, ext, triton, helpers) for n in ctx.body(fn)):
                helpers.add(fn.name)
                changed = True
    return helpers


@detector
def kernel_fallback(tree, source, ctx: ScanContext) -> Hit:
    ext, triton = _kernel_handles(ctx)
    helpers = _helpers_calling_kernels(ctx, ext, triton)
    for node in ctx.nodes:
        if isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            kernel = next((k for s in node.body for n in ast.walk(s) if (k := _kernel_call(ctx, n, ext, triton, helpers))), None)
            if not kernel:
                continue
            for h in node.handlers:
                if not any(isinstance(n, ast.Raise) for s in h.body for n in ast.walk(s)):
                    what = "silently ignores" if all(isinstance(s, ast.Pass) for s in h.body) else "falls back from"
                    yield node.lineno, f"try/except {what} a failure of custom kernel `{kernel}` (handler at line {h.lineno})"
                    break
        elif isinstance(node, ast.With):
            for item in node.items:
                e = item.context_expr
                if isinstance(e, ast.Call) and matches(ctx.qualname(e.func), ("contextlib.suppress",)):
                    kernel = next((k for s in node.body for n in ast.walk(s) if (k := _kernel_call(ctx, n, ext, triton, helpers))), None)
                    if kernel:
                        yield node.lineno, f"{short(e)} hides a failure of custom kernel `{kernel}`"


@detector
def empty_return(tree, source, ctx: ScanContext) -> Hit:
    empties = ("torch.empty", "torch.empty_like", "torch.empty_strided")

    def is_empty(e: ast.AST) -> bool:
        return isinstance(e, ast.Call) and (matches(ctx.qualname(e.func), empties) or (
            isinstance(e.func, ast.Attribute) and e.func.attr in ("new_empty", "new_empty_strided")))

    for fn in ctx.nodes:
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = ctx.body(fn)
        for r in body:
            if not (isinstance(r, ast.Return) and r.value is not None):
                continue
            if is_empty(r.value):
                yield r.lineno, f"returns {short(r.value)}, memory that nothing has written"
            elif isinstance(r.value, ast.Name):
                name = r.value.id
                made = [a for a in body if isinstance(a, ast.Assign) and is_empty(a.value)
                        and any(isinstance(t, ast.Name) and t.id == name for t in a.targets)]
                loads = [n for n in body if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]
                others = [a for a in body if isinstance(a, (ast.Assign, ast.AugAssign)) and a not in made
                          and any(isinstance(t, ast.Name) and t.id == name for t in ast.walk(a))]
                if made and len(loads) == 1 and not others:
                    yield r.lineno, f"returns `{name}` = {short(made[0].value)} without writing it"


@detector
def finalizer(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "__del__":
            yield node.lineno, "defines __del__, code that runs when an object is collected"
        elif isinstance(node, ast.Call):
            q = ctx.qualname(node.func)
            if q == "weakref.finalize" or (q in ("weakref.ref", "weakref.proxy") and len(node.args) >= 2):
                yield node.lineno, f"{short(node)} registers code that runs when an object is collected"


@detector
def inputs_override(tree, source, ctx: ScanContext) -> Hit:
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name in ("get_inputs", "get_init_inputs"):
            yield stmt.lineno, f"defines {stmt.name}(); it has no effect, the judge uses the reference's"
    if not ctx.reference_source:
        return
    try:
        ref = ast.parse(ctx.reference_source)
    except SyntaxError:
        return
    ref_consts = {t.id for s in ref.body if isinstance(s, (ast.Assign, ast.AnnAssign))
                  for t in (s.targets if isinstance(s, ast.Assign) else [s.target]) if isinstance(t, ast.Name)}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]):
                if isinstance(t, ast.Name) and t.id in ref_consts and t.id != "SMOKE":
                    yield stmt.lineno, (f"reassigns the reference's size constant `{t.id}`; it has no effect, "
                                        "the judge uses the reference's")


@detector
def rng_reseed(tree, source, ctx: ScanContext) -> Hit:
    seeders = ("torch.manual_seed", "torch.cuda.manual_seed", "torch.cuda.manual_seed_all", "torch.random.manual_seed",
               "torch.seed", "torch.set_rng_state", "torch.cuda.set_rng_state", "torch.cuda.set_rng_state_all",
               "torch.random.set_rng_state", "random.seed", "numpy.random.seed", "random.setstate")
    for call, q in ctx.calls():
        if matches(q, seeders) and ctx.enclosing_function(call) is not None:
            yield call.lineno, f"{short(call)} reseeds a global random generator at call time"
