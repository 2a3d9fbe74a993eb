"""What every static detector works from: the parsed candidate plus resolved names.

`ScanContext` resolves import aliases (``import torch.cuda as tc``, ``from time import
perf_counter as pc``) so that detectors compare dotted names (``torch.cuda.Stream``) and
never text; it also gathers the C/C++/CUDA source strings that the candidate passes to
``load_inline`` (comments and C string literals removed), which is the only place where
detectors look inside string contents.

A detector is a function ``(tree, source, ctx) -> Iterable[(lineno, message)]``,
registered by name with `detector`; patterns.yaml refers to it by that name.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

DetectorFn = Callable[[ast.AST, str, "ScanContext"], Iterable[tuple[int, str]]]
DETECTORS: dict[str, DetectorFn] = {}


def detector(fn: DetectorFn) -> DetectorFn:
    """Register ``fn`` under its own name (the name patterns.yaml uses)."""
    if fn.__name__ in DETECTORS:
        raise ValueError(f"detector {fn.__name__!r} registered twice")
    DETECTORS[fn.__name__] = fn
    return fn


# Calls whose string arguments are C++/CUDA sources: qualified-name suffix -> argument slots
# (positional index or keyword) holding sources.
_SOURCE_SINKS = {
    "cpp_extension.load_inline": ((1, "cpp_sources"), (2, "cuda_sources")),
    "load_inline": ((1, "cpp_sources"), (2, "cuda_sources")),
    "cupy.RawKernel": ((0, "code"),),
    "cupy.RawModule": ((0, "code"),),
}
_C_TOKEN = re.compile(r"""//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'""", re.S)
_IF0 = re.compile(r"^[ \t]*#[ \t]*if[ \t]+0\b.*?^[ \t]*#[ \t]*endif\b", re.S | re.M)
_BUILTIN_NAMES = frozenset(dir(builtins))


def strip_c_comments(code: str) -> str:
    """Remove C/C++ comments and ``#if 0`` blocks, blank string literals; keep line numbers."""

    def blank(m: re.Match) -> str:
        text = m.group(0)
        if text.startswith(("//", "/*")):
            return "\n" * text.count("\n")
        return text[0] * 2  # "" or '' : the literal's contents are data, not code

    code = _C_TOKEN.sub(blank, code)
    return _IF0.sub(lambda m: "\n" * m.group(0).count("\n"), code)


@dataclass(frozen=True)
class NativeSource:
    """A C/C++/CUDA source string handed to ``load_inline``; ``code`` has comments stripped."""

    lineno: int  # line of the Python string literal that starts it
    code: str

    def find(self, pattern: re.Pattern) -> Iterator[tuple[int, re.Match]]:
        """Yield (python line number, match) for each match of ``pattern`` in the code."""
        for m in pattern.finditer(self.code):
            yield self.lineno + self.code.count("\n", 0, m.start()), m


@dataclass
class ScanContext:
    tree: ast.Module
    source: str
    reference_source: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    assigned_names: set[str] = field(default_factory=set)
    module_names: set[str] = field(default_factory=set)
    nodes: list[ast.AST] = field(default_factory=list)  # every node, in ast.walk order
    assignments: dict[str, list[ast.AST]] = field(default_factory=dict)  # unparsed target -> values
    memo: dict = field(default_factory=dict)  # detectors' shared intermediate results
    _native: list[NativeSource] | None = None
    _calls: list[tuple[ast.Call, str | None]] | None = None

    @classmethod
    def build(cls, tree: ast.Module, source: str, reference_source: str | None = None) -> "ScanContext":
        ctx = cls(tree=tree, source=source, reference_source=reference_source)
        ctx.nodes = list(ast.walk(tree))
        for node in ctx.nodes:
            for child in ast.iter_child_nodes(node):
                ctx.parents[child] = node
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    ctx.assignments.setdefault(ast.unparse(t), []).append(node.value)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                ctx.assignments.setdefault(ast.unparse(node.target), []).append(node.value)
        ctx._collect_names()
        return ctx

    # --- names -------------------------------------------------------------------------
    def _collect_names(self) -> None:
        for node in self.nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        root = a.name.split(".")[0]
                        self.aliases[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name != "*":
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.assigned_names.add(node.name)
            elif isinstance(node, ast.arg):
                self.assigned_names.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                self.assigned_names.add(node.id)
        for stmt in self.tree.body:  # module-level names and ``tc = torch.cuda`` aliases
            targets = stmt.targets if isinstance(stmt, ast.Assign) else (
                [stmt.target] if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) else [])
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        self.module_names.add(n.id)
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, (ast.Name, ast.Attribute))):
                q = self.qualname(stmt.value, imported_only=True)
                if q:
                    self.aliases[stmt.targets[0].id] = q

    def qualname(self, node: ast.AST, imported_only: bool = False) -> str | None:
        """Dotted name of ``node`` with import aliases resolved, or None.

        A bare name that is neither imported nor assigned anywhere in the file is returned as
        itself (so ``open`` reads ``open``, a builtin); ``imported_only`` returns None for it.
        """
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if imported_only or node.id in self.assigned_names:
                return None
            return node.id
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value, imported_only)
            return f"{base}.{node.attr}" if base else None
        if (isinstance(node, ast.Call) and self.qualname(node.func) == "getattr" and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            base = self.qualname(node.args[0], imported_only)
            return f"{base}.{node.args[1].value}" if base else None
        return None

    def is_builtin(self, node: ast.AST, name: str) -> bool:
        """``node`` is the bare, unshadowed builtin ``name`` (or ``builtins.name``)."""
        q = self.qualname(node)
        return q in (name, f"builtins.{name}") and (q != name or name in _BUILTIN_NAMES)

    def calls(self) -> list[tuple[ast.Call, str | None]]:
        """Every call with its resolved dotted name (computed once)."""
        if self._calls is None:
            self._calls = [(n, self.qualname(n.func)) for n in self.nodes if isinstance(n, ast.Call)]
        return self._calls

    # --- structure ---------------------------------------------------------------------
    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        while node in self.parents:
            node = self.parents[node]
            yield node

    def enclosing_function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        for a in self.ancestors(node):
            if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return a
        return None

    def enclosing_class(self, node: ast.AST) -> ast.ClassDef | None:
        for a in self.ancestors(node):
            if isinstance(a, ast.ClassDef):
                return a
        return None

    # --- native sources ----------------------------------------------------------------
    @property
    def native_sources(self) -> list[NativeSource]:
        """C/C++/CUDA strings passed to load_inline (or cupy), resolved through variables."""
        if self._native is None:
            found: dict[tuple[int, str], NativeSource] = {}
            for call, q in self.calls():
                for arg in self._source_args(call, q):
                    for lineno, text in self._strings_of(arg, set()):
                        found.setdefault((lineno, text), NativeSource(lineno, strip_c_comments(text)))
            self._native = list(found.values())
        return self._native

    def native_matches(self, pattern: re.Pattern) -> Iterator[tuple[int, re.Match]]:
        for src in self.native_sources:
            yield from src.find(pattern)

    def _source_args(self, call: ast.Call, q: str | None) -> list[ast.AST]:
        slots = next((v for k, v in _SOURCE_SINKS.items() if q and (q == k or q.endswith("." + k))), None)
        out: list[ast.AST] = []
        names = {kw for _, kw in slots} if slots else set()
        for kw in call.keywords:
            if kw.arg in names or kw.arg in ("cpp_sources", "cuda_sources"):
                out.append(kw.value)
        for idx, _ in slots or ():
            if idx < len(call.args):
                out.append(call.args[idx])
        return out

    def _strings_of(self, node: ast.AST, seen: set[str]) -> Iterator[tuple[int, str]]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            parts = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
            yield node.lineno, "".join(parts)
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            for elt in node.elts:
                yield from self._strings_of(elt, seen)
        elif isinstance(node, ast.BinOp):
            yield from self._strings_of(node.left, seen)
            yield from self._strings_of(node.right, seen)
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                yield from self._strings_of(node.func.value, seen)
            for a in [*node.args, *(k.value for k in node.keywords)]:
                yield from self._strings_of(a, seen)
        elif isinstance(node, (ast.Name, ast.Attribute)):
            key = ast.unparse(node)
            if key in seen:
                return
            seen.add(key)
            for value in self._values_assigned_to(key):
                yield from self._strings_of(value, seen)

    def _values_assigned_to(self, key: str) -> list[ast.AST]:
        return self.assignments.get(key, [])


def self_attr_root(node: ast.AST, self_name: str = "self") -> str | None:
    """``self.cache[k].x`` -> ``self.cache``; None when the chain does not start at self."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self_name:
            return f"{self_name}.{node.attr}"
        node = node.value
    return None


def first_param(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    args = fn.args.posonlyargs + fn.args.args
    return args[0].arg if args else None


def short(node: ast.AST, limit: int = 60) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def walk_no_nested(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk`` that does not descend into nested function or class definitions."""
    todo = list(ast.iter_child_nodes(node))
    while todo:
        n = todo.pop()
        yield n
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(n))


def matches(q: str | None, names: Iterable[str]) -> bool:
    """``q`` equals one of ``names`` or lies below one ending in ``.*`` (``subprocess.*``)."""
    if not q:
        return False
    for n in names:
        if n.endswith(".*") and (q == n[:-2] or q.startswith(n[:-1])):
            return True
        if q == n:
            return True
    return False
