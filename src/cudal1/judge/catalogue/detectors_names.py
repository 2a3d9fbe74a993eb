"""Detectors for what name-based detectors cannot read: attributes and modules reached through
names built at run time (``getattr(os, "sym" + "link")``, ``vars(sys)[k]``, ``attrgetter``),
code built at run time (``exec``/``eval``, also reached through the builtins' namespace), and
code nested deeper than the scan follows (``scan-error``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .context import IMPORTERS, MAX_DEPTH, MAX_HOPS, ScanContext, detector, first_param, matches, short

Hit = Iterator[tuple[int, str]]

DYNAMIC_MODULE = "<a module named at run time>"
# Modules whose attributes reach the process, the interpreter, the dispatcher or the judge.
# Reaching them by a computed name, or through getattr/vars at all, hides the attribute from
# every detector that reads dotted names.
SENSITIVE_MODULES = (
    "os", "os.*", "posix", "nt", "sys", "sys.*", "builtins", "importlib", "importlib.*", "imp", "_imp",
    "ctypes", "ctypes.*", "_ctypes", "cffi", "gc", "inspect", "marshal", "pickle", "_pickle", "dill", "cloudpickle",
    "subprocess", "socket", "_socket", "ssl", "threading", "_thread", "multiprocessing", "multiprocessing.*",
    "concurrent.*", "signal", "_signal", "atexit", "faulthandler", "shutil", "io", "_io", "types", "runpy", "code",
    "codeop", "traceback", "linecache", "weakref", "_weakref", "pty", "mmap", "resource", "__main__",
    "torch._C", "torch._C.*", "torch.library", "torch._library", "torch._library.*", "torch.ops", "torch.ops.*",
    "torch._ops", "torch._dynamo", "torch._dynamo.*", "torch._inductor", "torch._inductor.*",
    "torch.utils._python_dispatch", "torch.overrides", "torch.multiprocessing", "torch.multiprocessing.*",
    "cudal1", "cudal1.*", DYNAMIC_MODULE,
)
_ATTR_FUNCS = ("getattr", "setattr", "delattr", "hasattr")
_DUNDER_ACCESS = ("__getattribute__", "__getattr__", "__setattr__", "__delattr__")
_ESCAPE_ATTRS = ("__globals__", "__builtins__", "__subclasses__")  # from any object to modules
_LOOKUPS = ("get", "pop", "setdefault", "__getitem__", "__setitem__", "__delitem__")
_DYNAMIC_BUILTINS = ("exec", "eval", "compile", "__import__")


def is_sensitive(module: str | None) -> bool:
    return matches(module, SENSITIVE_MODULES)


def module_of(ctx: ScanContext, node: ast.AST, hops: int = 0) -> str | None:
    """The module (or module attribute) ``node`` evaluates to, if the scan can tell: imported
    names and aliases, ``__import__(...)``/``importlib.import_module(...)`` (a computed name
    gives DYNAMIC_MODULE), ``sys.modules[...]``, ``getattr(module, ...)``, and names bound
    once to any of these (``o = os``, ``self.m = __import__("sys")``)."""
    q = ctx.qualname(node, imported_only=True)
    if q or hops > MAX_HOPS:
        return q
    if isinstance(node, ast.Call) and node.args:
        fq = ctx.qualname(node.func)
        if fq in IMPORTERS:
            return ctx.static_str(node.args[0]) or DYNAMIC_MODULE
        if fq in ("getattr", "builtins.getattr") and len(node.args) >= 2:
            return _member(module_of(ctx, node.args[0], hops + 1), ctx.static_str(node.args[1]))
        if isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            return _member(namespace_of(ctx, node.func.value, hops + 1), ctx.static_str(node.args[0]))
    elif isinstance(node, ast.Subscript):
        return _member(namespace_of(ctx, node.value, hops + 1), ctx.static_str(node.slice))
    elif isinstance(node, (ast.Name, ast.Attribute)) and ctx.bound_once(node) is not None:
        return module_of(ctx, ctx.bound_once(node), hops + 1)
    return None


def _member(namespace: str | None, name: str | None) -> str | None:
    """What ``namespace[name]`` is: a module from sys.modules, an attribute of a module."""
    if namespace is None or namespace.startswith("<"):
        return namespace if namespace == DYNAMIC_MODULE else None
    if namespace == "sys.modules":
        return name or DYNAMIC_MODULE
    if name is None:
        return DYNAMIC_MODULE if is_sensitive(namespace) else None
    return f"{namespace}.{name}"


def namespace_of(ctx: ScanContext, node: ast.AST, hops: int = 0) -> str | None:
    """Whose namespace dict ``node`` is: ``vars(M)`` and ``M.__dict__`` give M (``<object>``
    when M is no module), ``globals()``/``locals()``/``vars()`` give ``<globals>``/``<locals>``,
    ``__builtins__`` gives builtins and ``sys.modules`` itself; names bound once follow."""
    if hops > MAX_HOPS:
        return None
    if isinstance(node, ast.Call):
        if ctx.is_builtin(node.func, "vars"):
            return _object_namespace(ctx, node.args[0], hops) if node.args else "<locals>"
        for fn in ("globals", "locals"):
            if ctx.is_builtin(node.func, fn):
                return f"<{fn}>"
        return None
    if isinstance(node, ast.Attribute) and node.attr == "__dict__":
        return _object_namespace(ctx, node.value, hops)
    if isinstance(node, ast.Subscript):  # globals()["__builtins__"]
        builtins_key = ctx.static_str(node.slice) == "__builtins__"
        return "builtins" if builtins_key and namespace_of(ctx, node.value, hops + 1) else None
    if isinstance(node, (ast.Name, ast.Attribute)):
        q = ctx.qualname(node, imported_only=True)
        if q in ("builtins", "sys.modules"):
            return q
        if ctx.bound_once(node) is not None:
            return namespace_of(ctx, ctx.bound_once(node), hops + 1)
    return None


def _object_namespace(ctx: ScanContext, obj: ast.AST, hops: int) -> str:
    return module_of(ctx, obj, hops + 1) or ("<self>" if _is_own_self(ctx, obj) else "<object>")


def _is_own_self(ctx: ScanContext, node: ast.AST) -> bool:
    """``node`` is the ``self`` of the method it is used in (never rebound): the candidate's
    own object, whose attributes its own scanned code set."""
    if not isinstance(node, ast.Name) or node.id in ctx.assignments:
        return False
    fn = ctx.enclosing_function(node)
    return fn is not None and isinstance(ctx.parents.get(fn), ast.ClassDef) and first_param(fn) == node.id


def _attribute_call(ctx: ScanContext, call: ast.Call) -> str | None:
    """Why a getattr-like call hides what it reaches, or None."""
    q = ctx.qualname(call.func)
    if q in ("operator.attrgetter", "operator.methodcaller", "_operator.attrgetter", "_operator.methodcaller"):
        names = call.args if q.endswith("attrgetter") else call.args[:1]
        if any(isinstance(n, ast.Starred) or ctx.static_str(n) is None for n in names):
            return f"{short(call)} looks up attribute names built at run time"
        applied = ctx.parents.get(call)
        if isinstance(applied, ast.Call) and applied.func is call and applied.args:
            mod = module_of(ctx, applied.args[0])
            if is_sensitive(mod):
                return f"{short(applied)} reaches into {mod} by name"
        return None
    family = next((f for f in _ATTR_FUNCS if ctx.is_builtin(call.func, f)), None)
    if family:
        args = call.args
    elif isinstance(call.func, ast.Attribute) and call.func.attr in _DUNDER_ACCESS:
        family = call.func.attr  # object.__getattribute__(obj, name) or obj.__getattribute__(name)
        owner = call.func.value
        typeish = isinstance(owner, ast.Name) and owner.id in ("object", "type") or isinstance(owner, ast.Call)
        args = call.args if typeish and len(call.args) >= 2 else [owner, *call.args]
    else:
        return None
    if len(args) < 2 or any(isinstance(a, ast.Starred) for a in args[:2]):
        return f"{short(call)} is called with arguments the scan cannot read"
    obj, name = args[0], args[1]
    static = ctx.static_str(name)
    if static is None:
        if _is_own_self(ctx, obj):
            return None
        return f"{short(call)} uses an attribute name built at run time"
    if family == "hasattr":
        return None  # a feature test with a constant name reaches nothing
    mod = module_of(ctx, obj)
    if is_sensitive(mod) or (mod and is_sensitive(f"{mod}.{static}")):  # getattr(torch, "_C") too
        return f"{short(call)} reaches {mod}.{static} by name"
    if static in _ESCAPE_ATTRS:
        return f"{short(call)} reads {static}, a way from any object to modules"
    return None


def _namespace_use(ctx: ScanContext, node: ast.AST) -> str | None:
    """Why a namespace dict use (``vars(sys)``, ``g[name]``, ``__builtins__``) hides a name."""
    creating = isinstance(node, (ast.Call, ast.Subscript)) or (
        isinstance(node, ast.Attribute) and node.attr == "__dict__") or (
        isinstance(node, ast.Name) and node.id == "__builtins__" and node.id not in ctx.assigned_names)
    if creating:
        ns = namespace_of(ctx, node)
        if ns and is_sensitive(ns):
            return f"{short(node)} exposes the namespace of {ns}, where names are looked up at run time"
    key, owner = None, None
    if isinstance(node, ast.Subscript):
        key, owner = node.slice, node.value
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _LOOKUPS
          and node.args):
        key, owner = node.args[0], node.func.value
    if owner is None or ctx.static_str(key) is not None:
        return None
    ns = namespace_of(ctx, owner)
    if ns in (None, "<self>", "sys.modules"):  # sys.modules is sys-modules' business
        return None
    whose = {"<object>": "an object", "<globals>": "the module's globals", "<locals>": "local variables"}.get(ns, ns)
    return f"{short(node)} looks up a name built at run time in the namespace of {whose}"


@detector
def dynamic_attribute(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        why = _attribute_call(ctx, node) if isinstance(node, ast.Call) else None
        why = why or _namespace_use(ctx, node)
        if why:
            yield node.lineno, why
        elif isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names) and is_sensitive(node.module):
            yield node.lineno, f"from {node.module} import * brings in names no detector can trace"
        elif isinstance(node, ast.Attribute) and node.attr in _ESCAPE_ATTRS:
            yield node.lineno, f"{short(node)} reads {node.attr}, a way from any object to modules"
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            family = next((f for f in _ATTR_FUNCS[:3] if ctx.is_builtin(node, f)), None)
            parent = ctx.parents.get(node)
            if family and not (isinstance(parent, ast.Call) and parent.func is node):
                yield node.lineno, f"`{family}` is passed around as a value, so the scan cannot see what it reaches"


def _dynamic_builtin(ctx: ScanContext, node: ast.AST) -> str | None:
    """Which of exec/eval/compile/__import__ ``node`` is, however it is reached: the bare
    name, ``builtins.exec``, ``__builtins__.eval``, ``getattr(builtins, "ex" + "ec")``,
    ``__builtins__["eval"]``, ``vars(builtins).get("exec")``."""
    if isinstance(node, (ast.Name, ast.Attribute, ast.Call)):
        found = next((b for b in _DYNAMIC_BUILTINS if ctx.is_builtin(node, b)), None)
        if found or not isinstance(node, ast.Call):
            return found
        if not (isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args):
            return None
        owner, key = node.func.value, node.args[0]
    elif isinstance(node, ast.Subscript):
        owner, key = node.value, node.slice
    else:
        return None
    name = ctx.static_str(key)
    return name if name in _DYNAMIC_BUILTINS and namespace_of(ctx, owner) == "builtins" else None


_CODE_CALLS = ("importlib.import_module", "importlib.__import__", "marshal.loads", "pickle.loads", "types.FunctionType",
               "types.CodeType", "runpy.*", "code.*", "dill.*", "cloudpickle.*")


@detector
def dynamic_code(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        if isinstance(node, ast.Call) and matches(ctx.qualname(node.func), _CODE_CALLS):
            yield node.lineno, f"{short(node)} runs code that is not in the source"
            continue
        name = _dynamic_builtin(ctx, node)
        if name is None or (isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)):
            continue
        call = ctx.parents.get(node)
        if isinstance(call, ast.Call) and call.func is node:
            yield node.lineno, f"{short(call)} runs code that is not in the source"
        else:
            yield node.lineno, f"{short(node)} is the builtin {name}, which runs code that is not in the source"


@detector
def scan_limits(tree, source, ctx: ScanContext) -> Hit:
    if ctx.depth > MAX_DEPTH:
        yield ctx.deepest_line, (f"code nested {ctx.depth} levels deep; the scan vouches for at most {MAX_DEPTH} "
                                 "(no real program comes close), so it cannot vouch for this source")
