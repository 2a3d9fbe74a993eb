"""What every static detector works from: the parsed candidate plus resolved names.

`ScanContext` resolves import aliases (``import torch.cuda as tc``, ``from time import
perf_counter as pc``) so that detectors compare dotted names (``torch.cuda.Stream``) and
never text; it also gathers the C/C++/CUDA source strings that the candidate passes to
``load_inline`` (comments and C string literals removed), which is the only place where
detectors look inside string contents.

A detector is a function ``(tree, source, ctx) -> Iterable[(lineno, message)]``,
registered by name with `detector`; patterns.yaml refers to it by that name.

Candidates are adversarial, so everything here walks the tree iteratively and bounds what
it recurses into: a 2,000-level expression must not crash the scan (``scan_source`` turns
any crash into a ``scan-error`` finding anyway, and ``MAX_DEPTH`` flags such nesting).
"""

from __future__ import annotations

import ast
import builtins
import re
from collections import Counter, deque
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
# Deepest AST nesting the scan vouches for. Real code stays far below (the deepest file in
# torch itself is 93 levels); ast.unparse and other recursive helpers give out near 400.
MAX_DEPTH = 200
MAX_HOPS = 50  # how many names bound to names bound to ... resolution follows
IMPORTERS = ("__import__", "builtins.__import__", "importlib.import_module", "importlib.__import__")


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
    depth: int = 0  # deepest nesting of the tree (Module = 0)
    deepest_line: int = 1  # a line of the deepest node
    bindings: Counter = field(default_factory=Counter)  # name -> how often it is bound (args, targets, ...)
    _native: list[NativeSource] | None = None
    _calls: list[tuple[ast.Call, str | None]] | None = None
    _qualnames: dict = field(default_factory=dict)
    _keys: dict = field(default_factory=dict)
    _sizes: dict = field(default_factory=dict)  # node -> nodes in its subtree
    _bodies: dict = field(default_factory=dict)

    @classmethod
    def build(cls, tree: ast.Module, source: str, reference_source: str | None = None) -> "ScanContext":
        ctx = cls(tree=tree, source=source, reference_source=reference_source)
        todo = deque([(tree, 0)])  # breadth first, the order of ast.walk
        while todo:
            node, d = todo.popleft()
            ctx.nodes.append(node)
            if d > ctx.depth:
                ctx.depth = d
                ctx.deepest_line = getattr(node, "lineno", None) or ctx.deepest_line
            for child in ast.iter_child_nodes(node):
                ctx.parents[child] = node
                todo.append((child, d + 1))
        for node in reversed(ctx.nodes):  # subtree sizes, children first (for `key`)
            ctx._sizes[node] = 1 + sum(ctx._sizes.get(c, 1) for c in ast.iter_child_nodes(node))
        for node in ctx.nodes:
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    ctx.assignments.setdefault(ctx.key(t), []).append(node.value)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                ctx.assignments.setdefault(ctx.key(node.target), []).append(node.value)
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
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.bindings.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.assigned_names.add(node.name)
                self.bindings[node.name] += 1
            elif isinstance(node, ast.arg):
                self.assigned_names.add(node.arg)
                self.bindings[node.arg] += 1
            elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                self.assigned_names.add(node.id)
                self.bindings[node.id] += 1
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                self.bindings.update(node.names)
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
        self._collect_local_aliases()
        self._qualnames.clear()  # answers given while the aliases were still being collected

    def _collect_local_aliases(self) -> None:
        """``o = os``, ``self.m = sys``, ``m = importlib.import_module("o" + "s")`` anywhere: a
        name bound exactly once, to an imported name or a module imported by a constant name,
        reads as that name."""
        for key, values in self.assignments.items():
            root, _, rest = key.partition(".")
            if len(values) != 1 or not root.isidentifier() or (rest and not rest.isidentifier()):
                continue
            bound_once = self.bindings[root] == 1 if not rest else self.bindings[root] >= 1  # self: any method
            if not bound_once:
                continue
            value = values[0]
            if isinstance(value, (ast.Name, ast.Attribute)):
                q = self.qualname(value, imported_only=True)
            elif isinstance(value, ast.Call) and value.args and self.qualname(value.func) in IMPORTERS:
                q = self.static_str(value.args[0])
            else:
                continue
            if q and q != key:
                self.aliases.setdefault(key, q)

    def qualname(self, node: ast.AST, imported_only: bool = False) -> str | None:
        """Dotted name of ``node`` with import aliases resolved, or None.

        A bare name that is neither imported nor assigned anywhere in the file is returned as
        itself (so ``open`` reads ``open``, a builtin); ``imported_only`` returns None for it.
        ``getattr(m, "a" + "b")`` reads ``m.ab`` when the name is a constant string; ``self.x``
        reads as what it was bound to when that was once, to an imported name.
        """
        key = (node, imported_only)
        if key not in self._qualnames:
            self._qualnames[key] = self._qualname(node, imported_only)
        return self._qualnames[key]

    def _qualname(self, node: ast.AST, imported_only: bool) -> str | None:
        # One pass down the chain (attribute chains can be thousands of links long), then the
        # answer for every link on the way back up, so that the whole chain costs O(length).
        links: list[tuple[ast.AST, str]] = []  # (node, the name it adds), top down
        while True:
            if links and (node, imported_only) in self._qualnames:
                base = self._qualnames[(node, imported_only)]
                break
            if isinstance(node, ast.Attribute):
                links.append((node, node.attr))
                node = node.value
            elif isinstance(node, ast.Call) and self._is_getattr(node.func) and len(node.args) >= 2:
                name = self.static_str(node.args[1])
                links.append((node, name or ""))
                if name is None:
                    base = None
                    break
                node = node.args[0]
            else:
                if isinstance(node, ast.Name) and links and f"{node.id}.{links[-1][1]}" in self.aliases:
                    link, part = links.pop()  # self.m = sys: `self.m` reads sys
                    base = self.aliases[f"{node.id}.{part}"]
                    self._qualnames[(link, imported_only)] = base
                else:
                    base = self._name_qualname(node, imported_only)
                break
        for link, part in reversed(links):
            base = f"{base}.{part}" if base and part else None
            self._qualnames[(link, imported_only)] = base
        return base

    def _name_qualname(self, node: ast.AST, imported_only: bool) -> str | None:
        if not isinstance(node, ast.Name):
            return None
        if node.id in self.aliases:
            return self.aliases[node.id]
        if node.id in self.assigned_names or (imported_only and node.id != "__builtins__"):
            return None
        return "builtins" if node.id == "__builtins__" else node.id

    def _is_getattr(self, func: ast.AST) -> bool:
        """``func`` is the builtin getattr (checked without recursing: ``func`` is a short name)."""
        if isinstance(func, ast.Name):
            name = self.aliases.get(func.id) or (None if func.id in self.assigned_names else func.id)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            base = self.aliases.get(func.value.id) or (None if func.value.id in self.assigned_names else func.value.id)
            name = f"{base}.{func.attr}" if base else None
        else:
            return False
        return name in ("getattr", "builtins.getattr", "__builtins__.getattr")

    def static_str(self, node: ast.AST) -> str | None:
        """The string ``node`` always evaluates to when it is built from constants: literals,
        ``+`` of them, f-strings of them, ``"".join([...])`` of them, and names bound once to
        such a value (``name = "sym" + "link"``). None when it depends on anything else."""
        return _static_str(self, node, set())

    def key(self, node: ast.AST, max_nodes: int = 64) -> str:
        """The source text of a small expression used as a lookup key (``ext``, ``self.lib``,
        ``cache[k]``); bigger expressions get a placeholder unique to the node. Unparsing
        every link of a 2,000-link chain would cost O(n^2), and no real key is that big."""
        if node not in self._keys:
            parts, n = [], node
            while isinstance(n, ast.Attribute) and len(parts) <= max_nodes:  # the usual key: a.b.c
                parts.append(n.attr)
                n = n.value
            if isinstance(n, ast.Name) and len(parts) <= max_nodes:
                text = ".".join([n.id, *reversed(parts)])
            elif len(parts) <= max_nodes and self._sizes.get(node, max_nodes + 1) <= max_nodes:
                text = unparse(node)
            else:
                text = f"<{type(node).__name__} at line {getattr(node, 'lineno', '?')}:{id(node):x}>"
            self._keys[node] = text
        return self._keys[node]

    def bound_once(self, node: ast.AST) -> ast.AST | None:
        """The value assigned to the name or attribute ``node`` when exactly one assignment in
        the file binds it (``o = os``, ``self.m = vars(sys)``), else None."""
        values = self.assignments.get(self.key(node), [])
        return values[0] if len(values) == 1 else None

    def body(self, node: ast.AST) -> list[ast.AST]:
        """`walk_no_nested` of ``node``, computed once: detectors walk each function many times."""
        if node not in self._bodies:
            self._bodies[node] = list(walk_no_nested(node))
        return self._bodies[node]

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
        todo = [node]  # a stack, not recursion: sources can be "a" + "b" + ... 5,000 times
        while todo:
            node = todo.pop()
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield node.lineno, node.value
            elif isinstance(node, ast.JoinedStr):
                parts = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
                yield node.lineno, "".join(parts)
            elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
                todo.extend(reversed(node.elts))
            elif isinstance(node, ast.BinOp):
                todo += [node.right, node.left]
            elif isinstance(node, ast.Call):
                args = [*node.args, *(k.value for k in node.keywords)]
                todo.extend(reversed(([node.func.value] if isinstance(node.func, ast.Attribute) else []) + args))
            elif isinstance(node, (ast.Name, ast.Attribute)):
                key = self.key(node)
                if key not in seen:
                    seen.add(key)
                    todo.extend(reversed(self._values_assigned_to(key)))

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


def unparse(node: ast.AST) -> str:
    """``ast.unparse``, or a placeholder unique to ``node`` when it is nested too deep for it."""
    try:
        return ast.unparse(node)
    except RecursionError:
        return f"<{type(node).__name__} nested too deep at line {getattr(node, 'lineno', '?')}:{id(node):x}>"


def short(node: ast.AST, limit: int = 60) -> str:
    text = unparse(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _static_str(ctx: ScanContext, node: ast.AST, seen: set[str]) -> str | None:
    # Flatten `+` chains with a stack (they nest left, one level per operand).
    leaves, todo = [], [node]
    while todo:
        n = todo.pop()
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
            todo += [n.right, n.left]
        else:
            leaves.append(n)
    out = []
    for n in leaves:
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.append(n.value)
        elif isinstance(n, ast.JoinedStr):
            parts = [v if isinstance(v, ast.Constant) else v.value for v in n.values
                     if isinstance(v, ast.Constant) or (isinstance(v, ast.FormattedValue) and v.format_spec is None)]
            if len(parts) != len(n.values):
                return None
            strs = [_static_str(ctx, p, seen) for p in parts]
            if None in strs:
                return None
            out.append("".join(strs))
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "join"
              and len(n.args) == 1 and not n.keywords and isinstance(n.args[0], (ast.List, ast.Tuple))):
            sep = _static_str(ctx, n.func.value, seen)
            strs = [_static_str(ctx, e, seen) for e in n.args[0].elts]
            if sep is None or None in strs:
                return None
            out.append(sep.join(strs))
        elif isinstance(n, ast.Name) and n.id not in seen and len(seen) < MAX_HOPS and ctx.bindings[n.id] == 1 \
                and len(ctx.assignments.get(n.id, ())) == 1:
            value = _static_str(ctx, ctx.assignments[n.id][0], seen | {n.id})
            if value is None:
                return None
            out.append(value)
        else:
            return None
    return "".join(out)


def walk_no_nested(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk`` that does not descend into nested function or class definitions."""
    todo = list(ast.iter_child_nodes(node))
    while todo:
        n = todo.pop()
        yield n
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(n))


def imported_modules(node: ast.AST) -> list[str]:
    """The modules an ``import`` / ``from ... import`` statement imports (absolute ones only)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [node.module]
    return []


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
