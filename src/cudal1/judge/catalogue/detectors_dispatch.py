"""Detectors for changes to the operators every module in the process shares: aten (or any
namespace the candidate does not define) overridden through ``torch.library``, also under a
namespace computed at run time; the dispatcher's private API; dispatch modes left switched
on; ``TORCH_LIBRARY_IMPL`` blocks in the native sources given to load_inline."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from .context import MAX_HOPS, ScanContext, detector, matches, short

Hit = Iterator[tuple[int, str]]

# Namespaces that belong to PyTorch itself ("_" is TORCH_LIBRARY_IMPL's every-namespace wildcard).
PROTECTED_NAMESPACES = ("aten", "prim", "prims", "_", "c10d", "_c10d_functional", "quantized", "profiler")
_LIB_CTORS = ("torch.library.Library", "torch.library._scoped_library")
_DEFINERS = ("torch.library.custom_op", "torch.library.triton_op", "torch._library.custom_ops.custom_op")
_REGISTER = ("torch.library.impl", "torch.library.register_kernel", "torch.library.register_fake",
             "torch.library.register_autograd", "torch.library.impl_abstract", "torch.library.define",
             "torch.library._register_torch_dispatch_rule", "torch.library.register_torch_dispatch",
             "torch.library.register_vmap", "torch.library.register_autocast")
_BY_QUALNAME = ("torch.library.impl", "torch.library.define", "torch.library.impl_abstract")
_LIB_METHODS = ("impl", "define", "fallback", "_register_fake", "_register_torch_dispatch_rule",
                "_impl_with_aoti_compile")
# The dispatcher's private API: anything under these changes or inspects kernels process-wide.
_INTERNAL_PREFIXES = ("torch._C._dispatch", "torch._C._DispatchModule", "torch._library", "torch._C._push_on_torch_",
                      "torch._C._set_dispatch_mode", "torch._C._set_torch_function_mode")
_INTERNALS = ("torch.utils._python_dispatch._push_mode", "torch.overrides._push_mode", "torch._C._Library")
MODE_BASES = ("torch.utils._python_dispatch.TorchDispatchMode", "torch.utils._python_dispatch.BaseTorchDispatchMode",
              "torch.overrides.TorchFunctionMode", "torch.overrides.BaseTorchFunctionMode")
_NATIVE_BLOCK = re.compile(r"\b(TORCH_LIBRARY(?:_IMPL|_FRAGMENT)?)\s*\(\s*(\w+)")
_NATIVE_DISPATCHER = re.compile(r"\bc10::Dispatcher\b|\bDispatcher::singleton\b|\b(?:c10|torch)::RegisterOperators\b"
                                r"|\bregisterFallback\b|\btorch::Library\s+\w+\s*[({]|\btorch::Library\s*[({]"
                                r"|\bTorchLibraryInit\b")


def _arg(call: ast.Call, index: int, keyword: str) -> ast.AST | None:
    if index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: index + 1]):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _op_namespace(ctx: ScanContext, node: ast.AST | None) -> str | None:
    """``"ns::op"`` -> ns; ``torch.ops.ns.op(.overload)`` -> ns; None when not constant."""
    text = ctx.static_str(node) if node is not None else None
    if text is not None:
        return text.split("::")[0] if "::" in text else ""
    q = ctx.qualname(node) if node is not None else None
    if q and q.startswith("torch.ops.") and q.count(".") >= 3:
        return q.split(".")[2]
    return None


def _library_args(ctx: ScanContext, call: ast.Call) -> tuple[str | None, str | None]:
    """(namespace, kind) of ``Library(ns, kind)``, None where not a constant string."""
    return ctx.static_str(_arg(call, 0, "ns")), ctx.static_str(_arg(call, 1, "kind"))


def _libraries(ctx: ScanContext) -> tuple[dict[str, str | None], set[str]]:
    """(library variables -> their namespace or None when computed, namespaces this source defines)."""
    if "libraries" in ctx.memo:
        return ctx.memo["libraries"]
    libs: dict[str, str | None] = {}
    owned: set[str] = set()
    for call, q in ctx.calls():
        if matches(q, _LIB_CTORS):
            ns, kind = _library_args(ctx, call)
            if ns and kind in ("DEF", "FRAGMENT"):  # FRAGMENT adds definitions too
                owned.add(ns)
            parent = ctx.parents.get(call)
            if isinstance(parent, (ast.Assign, ast.withitem)):
                targets = parent.targets if isinstance(parent, ast.Assign) else [parent.optional_vars]
                libs.update((ctx.key(t), ns) for t in targets if t is not None)
        elif matches(q, _DEFINERS + ("torch.library.define",)):
            ns = _op_namespace(ctx, _arg(call, 0, "name" if q != "torch.library.define" else "qualname"))
            if ns:
                owned.add(ns)
    for src in ctx.native_sources:
        owned.update(m.group(2) for m in _NATIVE_BLOCK.finditer(src.code) if m.group(1) != "TORCH_LIBRARY_IMPL")
    owned -= set(PROTECTED_NAMESPACES)
    ctx.memo["libraries"] = libs, owned
    return libs, owned


def _foreign(ns: str | None, owned: set[str]) -> str | None:
    """Why registering into ``ns`` changes operators the candidate does not own, or None."""
    if ns is None:
        return "a namespace computed at run time"
    if ns in PROTECTED_NAMESPACES:
        return f"PyTorch's own `{ns}` namespace"
    if ns not in owned:
        return f"namespace `{ns}`, which this source does not define"
    return None


def _own_op_handles(ctx: ScanContext) -> set[str]:
    """Functions decorated with custom_op/triton_op: ``torch.library.register_fake(f)`` is fine."""
    return {fn.name for fn in ctx.nodes if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any(isinstance(d, ast.Call) and matches(ctx.qualname(d.func), _DEFINERS) for d in fn.decorator_list)}


def _library_calls(ctx: ScanContext) -> Hit:
    libs, owned = _libraries(ctx)
    handles = _own_op_handles(ctx)
    for call, q in ctx.calls():
        if matches(q, _LIB_CTORS):
            ns, kind = _library_args(ctx, call)
            why = _foreign(ns, owned) if ns is None or ns in PROTECTED_NAMESPACES or kind == "IMPL" else None
            if kind is None and not why:
                why = "a library kind computed at run time"
            if why:
                yield call.lineno, f"{short(call)} opens {why} for operator registrations"
        elif matches(q, _REGISTER):
            target = _arg(call, 0, "qualname" if q in _BY_QUALNAME else "op")
            if target is None:
                yield call.lineno, f"{short(call)} registers a kernel for an operator the scan cannot read"
                continue
            key = ctx.key(target)
            if key in libs:
                why = _foreign(libs[key], owned)
            elif isinstance(target, ast.Name) and target.id in handles:
                why = None
            else:
                ns = _op_namespace(ctx, target)
                why = None if q == "torch.library.define" and ns and ns not in PROTECTED_NAMESPACES \
                    else _foreign(ns, owned)
            if why:
                yield call.lineno, f"{short(call)} registers a kernel into {why}"
        elif isinstance(call.func, ast.Attribute):
            lib = ctx.key(call.func.value)
            if call.func.attr in _LIB_METHODS and lib in libs:
                why = _foreign(libs[lib], owned)
                if why:
                    yield call.lineno, f"{short(call)} replaces an operator in {why}"
            elif call.func.attr == "py_impl" and (q or "").startswith("torch.ops.") and (q or "").count(".") >= 3:
                why = _foreign(q.split(".")[2], owned)
                if why:
                    yield call.lineno, f"{short(call)} replaces an operator in {why}"


def _internals(ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, (ast.Attribute, ast.Name)) and isinstance(node.ctx, ast.Load):
            names = [ctx.qualname(node) or ""]
        for q in names:
            if q.startswith(_INTERNAL_PREFIXES) or q in _INTERNALS:
                yield node.lineno, f"{short(node)} uses the operator dispatcher's private API"
                break


def _mode_classes(ctx: ScanContext) -> set[str]:
    classes = [c for c in ctx.nodes if isinstance(c, ast.ClassDef)]
    modes: set[str] = set()
    changed = True
    while changed:  # subclasses of subclasses
        changed = False
        for c in classes:
            if c.name not in modes and any(matches(ctx.qualname(b), MODE_BASES) or ctx.key(b) in modes
                                           for b in c.bases):
                modes.add(c.name)
                changed = True
    return modes


def _is_mode(ctx: ScanContext, node: ast.AST, modes: set[str], seen: frozenset = frozenset()) -> bool:
    if isinstance(node, ast.Call):
        return matches(ctx.qualname(node.func), MODE_BASES) or ctx.key(node.func) in modes
    if isinstance(node, (ast.Name, ast.Attribute)):
        key = ctx.key(node)
        return key not in seen and len(seen) < MAX_HOPS and any(
            _is_mode(ctx, v, modes, seen | {key}) for v in ctx.assignments.get(key, []))
    return False


def _modes_left_on(ctx: ScanContext) -> Hit:
    modes = _mode_classes(ctx)
    for node in ctx.nodes:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "__enter__", "enter_context", "push"):
            entered = node.func.value if node.func.attr == "__enter__" else (node.args[0] if node.args else None)
            if entered is not None and _is_mode(ctx, entered, modes):
                yield node.lineno, f"{short(node)} switches a dispatch mode on and never off"
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            fn = ctx.enclosing_function(node)
            if (fn is None or fn.name == "__init__") and any(_is_mode(ctx, i.context_expr, modes) for i in node.items):
                where = "at import" if fn is None else "in __init__"
                mode = short(node.items[0].context_expr)
                yield node.lineno, f"`with {mode}` {where} intercepts operations outside forward"


def _native_blocks(ctx: ScanContext) -> Hit:
    _, owned = _libraries(ctx)
    for src in ctx.native_sources:
        for line, m in src.find(_NATIVE_BLOCK):
            macro, ns = m.group(1), m.group(2)
            why = _foreign(ns, owned) if macro == "TORCH_LIBRARY_IMPL" or ns in PROTECTED_NAMESPACES else None
            if why:
                yield line, f"native {macro}({ns}, ...) registers kernels into {why}"
        for line, m in src.find(_NATIVE_DISPATCHER):
            yield line, f"native code reaches the operator dispatcher ({m.group(0).strip()})"


@detector
def aten_override(tree, source, ctx: ScanContext) -> Hit:
    yield from _library_calls(ctx)
    yield from _internals(ctx)
    yield from _modes_left_on(ctx)
    yield from _native_blocks(ctx)
