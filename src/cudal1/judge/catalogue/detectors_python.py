"""Detectors for hacks written in Python: streams, tensor subclasses, caches, fallbacks."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .context import ScanContext, detector, first_param, matches, self_attr_root, short, walk_no_nested

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


def _captures_graph(ctx: ScanContext, scope: ast.AST) -> bool:
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
            if not _captures_graph(ctx, _graph_scope(ctx, call)):
                yield call.lineno, f"{short(call)} creates a side stream"
        elif matches(q, STREAM_CONTEXTS) and call.args:
            arg = call.args[0]
            if isinstance(arg, ast.Call) and matches(ctx.qualname(arg.func), CURRENT_STREAM):
                continue
            if isinstance(arg, ast.Constant) and arg.value is None:
                continue
            if not _captures_graph(ctx, _graph_scope(ctx, call)):
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
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for b in node.bases:
                if matches(ctx.qualname(b), bases):
                    yield node.lineno, f"class {node.name} subclasses {ast.unparse(b)}"
        elif isinstance(node, ast.Call) and ctx.is_builtin(node.func, "type") and len(node.args) == 3:
            if any(matches(ctx.qualname(e), bases) for e in ast.walk(node.args[1])):
                yield node.lineno, "type(...) builds a torch.Tensor subclass"


@detector
def make_subclass(tree, source, ctx: ScanContext) -> Hit:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "_make_subclass", "_make_wrapper_subclass", "as_subclass"):
            yield node.lineno, f"{short(node)} turns a tensor into a subclass instance"
        elif isinstance(node, ast.Attribute) and node.attr == "__class__" and isinstance(node.ctx, ast.Store):
            yield node.lineno, f"assignment to {short(node)} changes an object's class"


@detector
def torch_function_override(tree, source, ctx: ScanContext) -> Hit:
    modes = ("torch.overrides.TorchFunctionMode", "torch.utils._python_dispatch.TorchDispatchMode")
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in (
                "__torch_function__", "__torch_dispatch__"):
            yield node.lineno, f"defines {node.name}, which intercepts torch operations"
        elif isinstance(node, ast.ClassDef):
            for b in node.bases:
                if matches(ctx.qualname(b), modes):
                    yield node.lineno, f"class {node.name} subclasses {ast.unparse(b)}, which intercepts torch operations"


# --- pointer-keyed caches ------------------------------------------------------------------
_CARRIERS = (ast.Tuple, ast.List, ast.Set, ast.JoinedStr, ast.FormattedValue)
_LOOKUP_METHODS = ("get", "setdefault", "pop", "__contains__", "__getitem__", "__setitem__")


def _is_pointer(ctx: ScanContext, node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("data_ptr", "_data_ptr"):
            return True
        if (ctx.is_builtin(node.func, "id") or ctx.is_builtin(node.func, "hash")) and len(node.args) == 1:
            return not isinstance(node.args[0], ast.Constant)
    return isinstance(node, ast.Attribute) and node.attr == "_cdata" and isinstance(node.ctx, ast.Load)


def _pointer_use(ctx: ScanContext, node: ast.AST) -> str | None:
    """How a pointer-valued expression is used: 'key', 'compare', 'stored', ('taint', name) or None."""
    top = node
    while ctx.parents.get(top) is not None:
        p = ctx.parents[top]
        if isinstance(p, _CARRIERS) or (isinstance(p, ast.Call) and top in p.args and isinstance(p.func, ast.Name)
                                        and p.func.id in ("tuple", "str", "hash", "frozenset")):
            top = p
        else:
            break
    p = ctx.parents.get(top)
    if isinstance(p, ast.Subscript) and p.slice is top:
        return "used as a cache key"
    if isinstance(p, ast.Dict) and top in p.keys:
        return "used as a dict key"
    if isinstance(p, ast.Compare):
        return "compared"
    if isinstance(p, ast.Call) and isinstance(p.func, ast.Attribute) and p.func.attr in _LOOKUP_METHODS and top in p.args:
        return "used as a cache key"
    if isinstance(p, (ast.Assign, ast.AnnAssign)) and p.value is top:
        targets = p.targets if isinstance(p, ast.Assign) else [p.target]
        for t in targets:
            if isinstance(t, (ast.Attribute, ast.Subscript)):
                return "stored across calls"
            if isinstance(t, ast.Name):
                return "taint:" + t.id
    return None


@detector
def pointer_keyed_cache(tree, source, ctx: ScanContext) -> Hit:
    for node in ast.walk(tree):
        if not _is_pointer(ctx, node):
            continue
        use = _pointer_use(ctx, node)
        if use and use.startswith("taint:"):
            name, scope = use[6:], ctx.enclosing_function(node) or tree
            for n in walk_no_nested(scope):
                if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load):
                    use2 = _pointer_use(ctx, n)
                    if use2 and not use2.startswith("taint:"):
                        yield n.lineno, f"`{name}` holds the address {short(node)} and is {use2}"
        elif use:
            yield node.lineno, f"the address {short(node)} is {use}"


# --- result caches and call counting -------------------------------------------------------
def _methods(tree: ast.AST) -> Iterator[tuple[ast.FunctionDef, str | None]]:
    """Every function with the name its state lives under (the method's self; None for functions)."""
    methods = set()
    for cls in ast.walk(tree):
        if isinstance(cls, ast.ClassDef):
            for fn in cls.body:
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    methods.add(fn)
                    yield fn, first_param(fn)
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn not in methods:
            yield fn, None


def _state_root(node: ast.AST, self_name: str | None, globals_: set[str], local_roots: dict[str, str]) -> str | None:
    """Root of a state expression (``self.cache`` or ``global:_CACHE``) if ``node`` reads stored state."""
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "get", "clone", "detach", "view", "reshape", "contiguous", "view_as", "pop", "copy", "expand_as"):
            node = node.func.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            break
    if self_name:
        root = self_attr_root(node, self_name)
        if root:
            return root
    if isinstance(node, ast.Attribute):
        return _state_root(node.value, self_name, globals_, local_roots)
    if isinstance(node, ast.Name):
        return local_roots.get(node.id) or (f"global:{node.id}" if node.id in globals_ else None)
    return None


def _written_at_call_time(tree: ast.AST, ctx: ScanContext) -> set[str]:
    """State roots that some function other than __init__ assigns or mutates."""
    roots: set[str] = set()
    for fn, self_name in _methods(tree):
        if fn.name == "__init__":
            continue
        declared = {n for s in ast.walk(fn) if isinstance(s, ast.Global) for n in s.names}
        for n in walk_no_nested(fn):
            targets = []
            if isinstance(n, ast.Assign):
                targets = n.targets
            elif isinstance(n, (ast.AugAssign, ast.AnnAssign)):
                targets = [n.target]
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in (
                    "update", "setdefault", "append", "__setitem__", "extend", "insert", "add"):
                targets = [n.func.value]
            for t in targets:
                r = _state_root(t, self_name, ctx.module_names, {})
                if r and (r.startswith("global:") is False or r[7:] in declared or not isinstance(t, ast.Name)):
                    roots.add(r)
    return roots


_ALLOCATORS = ("torch.empty", "torch.zeros", "torch.ones", "torch.full", "torch.empty_like", "torch.zeros_like",
               "torch.ones_like", "torch.full_like", "torch.empty_strided")


@detector
def result_cache(tree, source, ctx: ScanContext) -> Hit:
    mutable = _written_at_call_time(tree, ctx)
    for fn, self_name in _methods(tree):
        if fn.name == "__init__":
            continue
        local_roots: dict[str, str] = {}
        for n in walk_no_nested(fn):
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                r = _state_root(n.value, self_name, ctx.module_names, {})
                if r:
                    local_roots[n.targets[0].id] = r
        replays = any(isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr == "replay"
                      for c in walk_no_nested(fn))
        returns = [r for r in walk_no_nested(fn) if isinstance(r, ast.Return) and r.value is not None]
        for node in walk_no_nested(fn):
            if not isinstance(node, ast.If):
                continue
            probed = {_state_root(e, self_name, ctx.module_names, local_roots) for e in ast.walk(node.test)} - {None}
            probed = {p for p in probed if p in mutable}
            if isinstance(node.test, ast.Call) and ctx.is_builtin(node.test.func, "hasattr") and self_name:
                probed |= {f"{self_name}.{a.value}" for a in node.test.args[1:] if isinstance(a, ast.Constant)}
            if not probed:
                continue
            inside = [r for s in node.body + node.orelse for r in ast.walk(s) if isinstance(r, ast.Return)]
            for r in inside:
                root = r.value is not None and _state_root(r.value, self_name, ctx.module_names, local_roots)
                if root in probed:
                    yield r.lineno, f"returns {short(r.value)}, stored by an earlier call, when {short(node.test)}"
                    break
            else:
                if replays:
                    continue
                assigned = {_state_root(t, self_name, ctx.module_names, {})
                            for s in node.body for a in ast.walk(s) if isinstance(a, ast.Assign)
                            and not matches(ctx.qualname(a.value.func) if isinstance(a.value, ast.Call) else None,
                                            _ALLOCATORS)
                            for t in a.targets}
                for r in returns:
                    root = _state_root(r.value, self_name, ctx.module_names, local_roots)
                    if root in probed and root in assigned and r.lineno > node.lineno:
                        yield r.lineno, f"returns {short(r.value)}, computed once when {short(node.test)}"
                        break


@detector
def call_counting(tree, source, ctx: ScanContext) -> Hit:
    for cls in ast.walk(tree):
        if not isinstance(cls, (ast.ClassDef, ast.Module)):
            continue
        counters: dict[str, ast.AugAssign] = {}
        for fn in cls.body:
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            self_name = first_param(fn) if isinstance(cls, ast.ClassDef) else None
            declared = {n for s in ast.walk(fn) if isinstance(s, ast.Global) for n in s.names}
            for n in walk_no_nested(fn):
                if isinstance(n, ast.AugAssign) and isinstance(n.op, (ast.Add, ast.Sub)) and isinstance(n.value, ast.Constant):
                    key = self_attr_root(n.target, self_name) if self_name else None
                    if key is None and isinstance(n.target, ast.Name) and n.target.id in declared:
                        key = n.target.id
                    if key:
                        counters.setdefault(key, n)
        if not counters:
            continue
        for test in ast.walk(cls):
            if not isinstance(test, (ast.Compare, ast.If, ast.IfExp, ast.While)):
                continue
            expr = test if isinstance(test, ast.Compare) else test.test
            for e in ast.walk(expr):
                key = ast.unparse(e) if isinstance(e, (ast.Attribute, ast.Name)) else None
                if key in counters:
                    aug = counters.pop(key)
                    yield aug.lineno, f"counts calls in `{key}` and branches on the count (line {test.lineno})"
                    break


# --- kernel fallbacks ----------------------------------------------------------------------
def _kernel_handles(ctx: ScanContext) -> tuple[set[str], set[str]]:
    """(expressions bound to built extensions, names of Triton kernels)."""
    ext, triton = set(), set()
    for node in ast.walk(ctx.tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and matches(
                ctx.qualname(node.value.func), KERNEL_BUILDERS):
            ext.update(ast.unparse(t) for t in node.targets)
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
        if ast.unparse(f.value) in ext or (isinstance(f.value, ast.Call) and matches(ctx.qualname(f.value.func), KERNEL_BUILDERS)):
            return short(f)
        if f.attr in helpers and isinstance(f.value, ast.Name):
            return short(f)
    if isinstance(f, ast.Subscript) and isinstance(f.value, ast.Name) and f.value.id in triton:
        return f.value.id
    if isinstance(f, ast.Name) and f.id in helpers:
        return f.id
    return None


def _helpers_calling_kernels(ctx: ScanContext, ext: set[str], triton: set[str]) -> set[str]:
    funcs = [n for n in ast.walk(ctx.tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    helpers: set[str] = set()
    changed = True
    while changed:
        changed = False
        for fn in funcs:
            if fn.name not in helpers and fn.name not in triton and any(
                    _kernel_call(ctx, n, ext, triton, helpers) for n in walk_no_nested(fn)):
                helpers.add(fn.name)
                changed = True
    return helpers


@detector
def kernel_fallback(tree, source, ctx: ScanContext) -> Hit:
    ext, triton = _kernel_handles(ctx)
    helpers = _helpers_calling_kernels(ctx, ext, triton)
    for node in ast.walk(tree):
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

    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = list(walk_no_nested(fn))
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
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "__del__":
            yield node.lineno, "defines __del__, code that runs when an object is collected"
        elif isinstance(node, ast.Call):
            q = ctx.qualname(node.func)
            if q == "weakref.finalize" or (q in ("weakref.ref", "weakref.proxy") and len(node.args) >= 2):
                yield node.lineno, f"{short(node)} registers code that runs when an object is collected"


@detector
def aten_override(tree, source, ctx: ScanContext) -> Hit:
    aten_libs: set[str] = set()
    lib_ctor = ("torch.library.Library",)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and matches(ctx.qualname(node.value.func), lib_ctor):
            a = node.value.args
            if a and isinstance(a[0], ast.Constant) and a[0].value == "aten":
                aten_libs.update(ast.unparse(t) for t in node.targets)
    register = ("torch.library.impl", "torch.library.register_kernel", "torch.library.register_fake",
                "torch.library.register_autograd", "torch.library.impl_abstract", "torch.library.define")
    for call, q in ctx.calls():
        strs = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if matches(q, lib_ctor) and strs[:1] == ["aten"]:
            yield call.lineno, f"{short(call)} opens the aten operator library for changes"
        elif matches(q, register) and (any(s.startswith("aten::") for s in strs)
                                       or any(ast.unparse(a) in aten_libs for a in call.args)):
            yield call.lineno, f"{short(call)} replaces a built-in aten operator"
        elif isinstance(call.func, ast.Attribute) and call.func.attr in ("impl", "define", "fallthrough_kernel") \
                and ast.unparse(call.func.value) in aten_libs:
            yield call.lineno, f"{short(call)} replaces a built-in aten operator"
        elif isinstance(call.func, ast.Attribute) and call.func.attr == "py_impl" and (q or "").startswith("torch.ops.aten."):
            yield call.lineno, f"{short(call)} replaces a built-in aten operator"
        elif q and q.startswith("torch._C._dispatch_"):
            yield call.lineno, f"{short(call)} changes the operator dispatcher"


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
