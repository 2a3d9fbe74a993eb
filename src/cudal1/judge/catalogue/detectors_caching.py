"""Detectors for caches that return stored outputs: pointer-keyed caches, result caches and
call counters."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .context import ScanContext, detector, first_param, matches, self_attr_root, short
from .detectors_python import captures_graph

Hit = Iterator[tuple[int, str]]

# --- pointer-keyed caches ------------------------------------------------------------------
_CARRIERS = (ast.Tuple, ast.List, ast.Set, ast.JoinedStr, ast.FormattedValue)
_VALUE_ATTRS = ("shape", "dtype", "device", "ndim", "layout", "is_cuda", "requires_grad")
_LOOKUP_METHODS = ("get", "setdefault", "pop", "__contains__", "__getitem__", "__setitem__")


def _is_pointer(ctx: ScanContext, node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("data_ptr", "_data_ptr"):
            return True
        if ctx.is_builtin(node.func, "id") and len(node.args) == 1:
            return not isinstance(node.args[0], ast.Constant)
        if ctx.is_builtin(node.func, "hash") and len(node.args) == 1:  # tensors hash by identity
            a = node.args[0]
            return isinstance(a, ast.Name) or (isinstance(a, ast.Attribute) and a.attr not in _VALUE_ATTRS)
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


_ADDRESS_OPS = (ast.BitAnd, ast.BitOr, ast.RShift, ast.LShift, ast.Add, ast.Sub)


def _builds_from_address(ctx: ScanContext, fn: ast.AST) -> bool:
    """``fn`` does arithmetic on an address (``ptr & 0xFFFFFFFF``, ``ptr + offset``): it builds a
    descriptor or handle from the pointer, so a cache keyed on that pointer is correct."""
    memo = ctx.memo.setdefault("builds_from_address", {})
    if fn not in memo:
        memo[fn] = _address_arithmetic(ctx, fn)
    return memo[fn]


def _address_arithmetic(ctx: ScanContext, fn: ast.AST) -> bool:
    tainted = set()
    for n in ctx.body(fn):
        if isinstance(n, ast.Assign) and _is_pointer(ctx, n.value):
            tainted.update(t.id for t in n.targets if isinstance(t, ast.Name))
    for n in ctx.body(fn):
        if isinstance(n, ast.BinOp) and isinstance(n.op, _ADDRESS_OPS):
            for side in (n.left, n.right):
                if _is_pointer(ctx, side) or (isinstance(side, ast.Name) and side.id in tainted):
                    return True
    return False


@detector
def pointer_keyed_cache(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        if not _is_pointer(ctx, node):
            continue
        fn = ctx.enclosing_function(node)
        if fn is not None and _builds_from_address(ctx, fn):
            continue
        use = _pointer_use(ctx, node)
        if use and use.startswith("taint:"):
            name, scope = use[6:], ctx.enclosing_function(node) or tree
            for n in ctx.body(scope):
                if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load):
                    use2 = _pointer_use(ctx, n)
                    if use2 and not use2.startswith("taint:"):
                        yield n.lineno, f"`{name}` holds the address {short(node)} and is {use2}"
        elif use:
            yield node.lineno, f"the address {short(node)} is {use}"


# --- result caches and call counting -------------------------------------------------------
def _methods(ctx: ScanContext) -> Iterator[tuple[ast.FunctionDef, str | None]]:
    """Every function with the name its state lives under (the method's self; None for functions)."""
    methods = set()
    for cls in ctx.nodes:
        if isinstance(cls, ast.ClassDef):
            for fn in cls.body:
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    methods.add(fn)
                    yield fn, first_param(fn)
    for fn in ctx.nodes:
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn not in methods:
            yield fn, None


_STATE_METHODS = ("get", "clone", "detach", "view", "reshape", "contiguous", "view_as", "pop", "copy", "expand_as")


def _state_root(node: ast.AST, self_name: str | None, globals_: set[str], local_roots: dict[str, str]) -> str | None:
    """Root of a state expression (``self.cache`` or ``global:_CACHE``) if ``node`` reads stored state."""
    attr = None  # the attribute read directly off the name at the bottom of the chain
    while True:  # one pass down the chain: candidates can nest it thousands of levels deep
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _STATE_METHODS:
            attr, node = None, node.func.value
        elif isinstance(node, ast.Subscript):
            attr, node = None, node.value
        elif isinstance(node, ast.Attribute):
            attr, node = node.attr, node.value
        else:
            break
    if not isinstance(node, ast.Name):
        return None
    if self_name and node.id == self_name and attr is not None:
        return f"{self_name}.{attr}"
    return local_roots.get(node.id) or (f"global:{node.id}" if node.id in globals_ else None)


def _inside_chain(ctx: ScanContext, e: ast.AST) -> bool:
    """``e`` is a link inside a longer state chain whose top gives the same root, so it can be
    skipped (names and ``name.attr`` are cheap and can differ: ``self`` vs ``self.cache``)."""
    p = ctx.parents.get(e)
    inner = (isinstance(p, (ast.Attribute, ast.Subscript)) and p.value is e) or (
        isinstance(p, ast.Call) and p.func is e and isinstance(e, ast.Attribute) and e.attr in _STATE_METHODS)
    return inner and not (isinstance(e, ast.Name) or isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name))


def _written_at_call_time(tree: ast.AST, ctx: ScanContext) -> set[str]:
    """State roots that some function other than __init__ assigns or mutates."""
    roots: set[str] = set()
    for fn, self_name in _methods(ctx):
        if fn.name == "__init__":
            continue
        declared = {n for s in ast.walk(fn) if isinstance(s, ast.Global) for n in s.names}
        for n in ctx.body(fn):
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


def _output_paths(ctx: ScanContext) -> set[ast.AST]:
    """forward/__call__ methods and the functions whose result they return (transitively).

    A cache in these returns stored outputs; a cache elsewhere (compiled kernels keyed by
    shape, looked up and then launched) does not, and is left alone.
    """
    methods = list(_methods(ctx))
    by_name: dict[str, list[ast.AST]] = {}
    for fn, self_name in methods:
        by_name.setdefault(fn.name if self_name is None else f"{self_name}.{fn.name}", []).append(fn)
    paths = {fn for fn, _ in methods if fn.name in ("forward", "__call__")}
    todo = list(paths)
    while todo:
        fn = todo.pop()
        body = ctx.body(fn)
        returned = {e.id for r in body if isinstance(r, ast.Return) and r.value is not None
                    for e in ([r.value] + getattr(r.value, "elts", [])) if isinstance(e, ast.Name)}
        calls = [r.value for r in body if isinstance(r, ast.Return) and isinstance(r.value, ast.Call)]
        calls += [a.value for a in body if isinstance(a, ast.Assign) and isinstance(a.value, ast.Call)
                  and any(isinstance(t, ast.Name) and t.id in returned for t in a.targets)]
        for call in calls:
            for callee in by_name.get(ctx.key(call.func), []):
                if callee not in paths:
                    paths.add(callee)
                    todo.append(callee)
    return paths


@detector
def result_cache(tree, source, ctx: ScanContext) -> Hit:
    mutable = _written_at_call_time(tree, ctx)
    paths = _output_paths(ctx)
    for fn, self_name in _methods(ctx):
        if fn not in paths:
            continue
        local_roots: dict[str, str] = {}
        for n in ctx.body(fn):
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                r = _state_root(n.value, self_name, ctx.module_names, {})
                if r:
                    local_roots[n.targets[0].id] = r
        replays = any(isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr == "replay"
                      for c in ctx.body(fn))
        returns = [r for r in ctx.body(fn) if isinstance(r, ast.Return) and r.value is not None]
        for node in ctx.body(fn):
            if not isinstance(node, ast.If):
                continue
            probed = {_state_root(e, self_name, ctx.module_names, local_roots) for e in ast.walk(node.test)
                      if not _inside_chain(ctx, e)} - {None}
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
    for cls in ctx.nodes:
        if not isinstance(cls, (ast.ClassDef, ast.Module)):
            continue
        if isinstance(cls, ast.ClassDef) and captures_graph(ctx, cls):
            continue  # warm up for N calls, then capture a CUDA graph: counted, but honest
        counters: dict[str, ast.AugAssign] = {}
        for fn in cls.body:
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            self_name = first_param(fn) if isinstance(cls, ast.ClassDef) else None
            declared = {n for s in ast.walk(fn) if isinstance(s, ast.Global) for n in s.names}
            for n in ctx.body(fn):
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
                key = ctx.key(e) if isinstance(e, (ast.Attribute, ast.Name)) else None
                if key in counters:
                    aug = counters.pop(key)
                    yield aug.lineno, f"counts calls in `{key}` and branches on the count (line {test.lineno})"
                    break
