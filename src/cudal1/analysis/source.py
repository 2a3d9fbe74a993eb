"""Reading a candidate or a task without running it: calls, decorators, assignments, native
code handed to builders, and the operations it computes (for the tag detectors)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..tasks.contract import Task
from .catalogue import catalogue


# --- reading a source -----------------------------------------------------------------------
BUILDERS = {
    "torch.utils.cpp_extension.load_inline", "torch.utils.cpp_extension.load",
    "cupy.RawKernel", "cupy.RawModule", "cupy.ElementwiseKernel", "cupy.ReductionKernel",
    "numba.cuda.jit", "torch.cuda.jiterator._create_jit_fn", "torch.cuda.jiterator._create_multi_output_jit_fn",
}
_GLOBAL_FN_RE = re.compile(
    r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(?:static\s+)?void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)"
)
_CPP_BLOCK_RE = re.compile(r"(PYBIND11_MODULE|TORCH_LIBRARY(?:_IMPL)?)\s*\([^)]*\)\s*\{")
_CPP_COMPUTE_RE = re.compile(r"\bfor\s*\(|\bwhile\s*\(|#\s*pragma\s+omp|parallel_for\s*\(")
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


@dataclass
class SourceFacts:
    """What the tag detectors need from one Python source, read from its AST (never executed)."""

    calls: list[tuple[str, ast.Call]] = field(default_factory=list)  # (resolved dotted name, node)
    decorated: dict[str, list[str]] = field(default_factory=dict)    # function name -> decorator names
    assigns: list[tuple[str, ast.expr]] = field(default_factory=list)  # (dotted target, value)
    names: set[str] = field(default_factory=set)                     # every resolved dotted name used
    strings: list[str] = field(default_factory=list)
    cuda_code: list[str] = field(default_factory=list)
    cpp_code: list[str] = field(default_factory=list)
    native_files: list[str] = field(default_factory=list)            # .cu/.cpp files given to load()
    builder_calls: list[str] = field(default_factory=list)
    ops: set[str] = field(default_factory=set)                       # operation keys (see op_key)
    arith: set[str] = field(default_factory=set)                     # tensor arithmetic in class methods
    op_calls: list[tuple[str, ast.Call]] = field(default_factory=list)  # calls that may be operations
    triton_code: list[str] = field(default_factory=list)             # source of @triton.jit functions

    # derived -------------------------------------------------------------------------
    @property
    def cuda_kernels(self) -> list[str]:
        return sorted({m for code in self.cuda_code for m in _GLOBAL_FN_RE.findall(code)})

    @property
    def triton_kernels(self) -> list[str]:
        return sorted(n for n, decs in self.decorated.items() if any(d.startswith("triton.") for d in decs))

    @property
    def cpp_compute(self) -> bool:
        return any(_CPP_COMPUTE_RE.search(_strip_cpp_blocks(c)) for c in self.cpp_code) or any(
            f.endswith((".cpp", ".cc", ".cxx")) for f in self.native_files
        )

    @property
    def has_custom_kernel(self) -> bool:
        return bool(self.cuda_kernels and self.builder_calls) or bool(self.triton_kernels) or (
            self.cpp_compute and bool(self.builder_calls)
        ) or any(f.endswith(".cu") for f in self.native_files)

    def called(self, *names: str) -> list[ast.Call]:
        return [node for n, node in self.calls if n in names]

    def kernel_code(self) -> str:
        """All native code plus the Triton kernels' Python source: what custom kernels compute."""
        return "\n".join(self.cuda_code + self.cpp_code + self.triton_code)


def _strip_cpp_blocks(code: str) -> str:
    """C++ code without comments and without PYBIND11_MODULE/TORCH_LIBRARY blocks."""
    code = _COMMENT_RE.sub("", code)
    while (m := _CPP_BLOCK_RE.search(code)):
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        code = code[: m.start()] + code[i:]
    return code


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Call):  # torch.backends.cudnn.flags(...).x: name the call
        return _dotted(node.func)
    return None


class _Reader(ast.NodeVisitor):
    def __init__(self, facts: SourceFacts, skip_functions: tuple[str, ...] = ()):
        self.f = facts
        self.aliases: dict[str, str] = {}
        self.values: dict[str, ast.expr] = {}
        self.skip = skip_functions
        self.class_depth = 0
        self.in_init = 0  # inside a class's __init__: only module constructions are operations

    def resolve(self, dotted: str | None) -> str:
        if not dotted:
            return ""
        head, _, rest = dotted.partition(".")
        full = self.aliases.get(head, head)
        return f"{full}.{rest}" if rest else full

    # imports ----------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.asname:
                self.aliases[a.asname] = a.name
            else:
                self.aliases.setdefault(a.name.split(".")[0], a.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name] = f"{node.module}.{a.name}" if node.module else a.name

    # definitions ------------------------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.class_depth += 1
        self.generic_visit(node)
        self.class_depth -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name in self.skip:
            return
        decs = [self.resolve(_dotted(d.func if isinstance(d, ast.Call) else d)) for d in node.decorator_list]
        self.f.decorated[node.name] = decs
        if any(d.startswith("triton.") for d in decs):
            self.f.triton_code.append(ast.unparse(node))
        for d in decs:
            self.f.calls.append((d, ast.Call(func=ast.Name(d), args=[], keywords=[])))
        init = self.class_depth > 0 and node.name == "__init__"
        self.in_init += init
        self.generic_visit(node)
        self.in_init -= init

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            name = _dotted(t)
            if name:
                self.f.assigns.append((self.resolve(name), node.value))
                self.values[name] = node.value
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        name = _dotted(node.target)
        if name and node.value is not None:
            self.f.assigns.append((self.resolve(name), node.value))
            self.values[name] = node.value
        self.generic_visit(node)

    # uses -------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        name = self.resolve(_dotted(node.func))
        self.f.calls.append((name, node))
        if not self.in_init or (name.startswith("torch.nn.") and name.rsplit(".", 1)[-1][:1].isupper()):
            self.f.op_calls.append((name, node))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = _dotted(node)
        if name:
            self.f.names.add(self.resolve(name))
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if self.class_depth and not self.in_init and type(node.op) in _BINOPS and _tensor_arith(node.left, node.right):
            self.f.arith.add(_BINOPS[type(node.op)])
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if self.class_depth and not self.in_init and type(node.op) in _BINOPS and _tensor_arith(node.target, node.value):
            self.f.arith.add(_BINOPS[type(node.op)])
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self.f.strings.append(node.value)


def _string_values(node: ast.expr | None, values: dict[str, ast.expr], depth: int = 0) -> list[str]:
    """The string(s) an argument expression stands for: constants, names bound to them, lists,
    concatenations and f-strings (their constant parts)."""
    if node is None or depth > 8:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in values:
        return _string_values(values[node.id], values, depth + 1)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [s for e in node.elts for s in _string_values(e, values, depth + 1)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return ["".join(_string_values(node.left, values, depth + 1) + _string_values(node.right, values, depth + 1))]
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))]
    return []


def read_source(source: str, class_name: str | None = None) -> SourceFacts:
    """Read a candidate (whole file) or, with ``class_name``, one class of a task (its Model).

    ``get_inputs``/``get_init_inputs`` are skipped: they build inputs, they are not the program.
    A candidate that embeds the reference's ``Model`` (as the optimizer's do, to subclass it)
    is read with only the parts of ``Model`` that can still run: everything when ``Model(...)``
    is instantiated, a subclass keeps ``Model.forward`` or calls it; else all but ``forward``.
    Raises SyntaxError for a source that does not parse.
    """
    tree = ast.parse(source)
    facts = SourceFacts()
    reader = _Reader(facts, skip_functions=("get_inputs", "get_init_inputs"))
    for node in tree.body:  # imports first, so that aliases resolve everywhere
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            reader.visit(node)
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    if class_name:
        body: list[ast.stmt] = [classes[class_name]] if class_name in classes else []
    else:
        body = [n for n in tree.body if not (isinstance(n, ast.ClassDef) and n.name == "Model")]
        if "Model" in classes and not _model_forward_runs(tree, classes):
            model = classes["Model"]
            trimmed = ast.ClassDef(
                name="Model", bases=model.bases, keywords=model.keywords, decorator_list=[],
                body=[n for n in model.body if not (isinstance(n, ast.FunctionDef) and n.name == "forward")],
            )
            if any(_subclasses_model(c) for c in classes.values()):
                body.append(trimmed)
        elif "Model" in classes:
            body.append(classes["Model"])
    for node in body:
        reader.visit(node)
    _native_code(facts, reader.values)
    facts.ops = _op_keys(facts, reader)
    return facts


def _subclasses_model(cls: ast.ClassDef) -> bool:
    return any((_dotted(b) or "").split(".")[-1] == "Model" for b in cls.bases)


def _model_forward_runs(tree: ast.Module, classes: dict[str, ast.ClassDef]) -> bool:
    """Whether an embedded reference ``Model.forward`` still runs in a candidate file."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func) or ""
            if name == "Model" or name.endswith(("Model.forward", "super.forward")):
                return True
    for cls in classes.values():
        if cls.name != "Model" and _subclasses_model(cls):
            if not any(isinstance(n, ast.FunctionDef) and n.name == "forward" for n in cls.body):
                return True
    return False


def _native_code(facts: SourceFacts, values: dict[str, ast.expr]) -> None:
    for name, call in facts.calls:
        if name not in BUILDERS:
            continue
        facts.builder_calls.append(name)
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        if name.endswith("load_inline"):
            cpp = kw.get("cpp_sources", call.args[1] if len(call.args) > 1 else None)
            cuda = kw.get("cuda_sources", call.args[2] if len(call.args) > 2 else None)
            facts.cpp_code += _string_values(cpp, values)
            facts.cuda_code += _string_values(cuda, values)
        elif name.endswith("cpp_extension.load"):
            srcs = kw.get("sources", call.args[1] if len(call.args) > 1 else None)
            facts.native_files += _string_values(srcs, values)
        else:  # CuPy / jiterator take CUDA code as their first argument
            facts.cuda_code += _string_values(call.args[0] if call.args else kw.get("code"), values)
    # CUDA code built in ways the resolver cannot follow (functions, format calls): any literal
    # with a __global__ function still counts as CUDA code.
    for s in facts.strings:
        if "__global__" in s and s not in facts.cuda_code:
            facts.cuda_code.append(s)


# --- operations (for algebraic-simplification and op-fusion) -------------------------------
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.MatMult: "matmul", ast.Pow: "pow"}
_TENSOR_METHODS: frozenset[str] | None = None


def op_key(name: str) -> str:
    """``torch.nn.functional.layer_norm`` / ``nn.LayerNorm`` / ``x.layer_norm_`` -> ``layernorm``;
    ``conv2d`` / ``nn.Conv3d`` -> ``conv`` (the dimension suffix is dropped)."""
    key = name.rsplit(".", 1)[-1].lower().replace("_", "")
    return re.sub(r"(?<=[a-z])[123]d$", "", key)


def _tensor_methods() -> frozenset[str]:
    global _TENSOR_METHODS
    if _TENSOR_METHODS is None:
        import torch

        _TENSOR_METHODS = frozenset(n for n in dir(torch.Tensor) if not n.startswith("__"))
    return _TENSOR_METHODS


def _op_keys(facts: SourceFacts, reader: _Reader) -> set[str]:
    ignore = catalogue().ignore_ops
    ops: set[str] = set(facts.arith)
    for name, node in facts.op_calls:
        if not isinstance(node.func, (ast.Attribute, ast.Name)) or name in BUILDERS:
            continue
        if name.startswith("torch.") and not name.startswith(
            ("torch.cuda.", "torch.backends.", "torch.utils.", "torch._", "torch.nn.init.", "torch.nn.Parameter")
        ):
            ops.add(op_key(name))
        elif isinstance(node.func, ast.Attribute) and not name.startswith("self."):
            base = reader.resolve(_dotted(node.func.value))
            if base.split(".")[0] in ("triton", "numpy", "math", "os", "sys", "cupy", "numba"):
                continue
            if node.func.attr in _tensor_methods():
                ops.add(op_key(node.func.attr))
    # Functions passed around rather than called (torch.compile(F.gelu), map(torch.relu, ...)).
    for n in facts.names:
        head, _, last = n.rpartition(".")
        if head in ("torch.nn.functional", "torch") and last[:1].islower() and _torch_callable(head, last):
            ops.add(op_key(last))
    return {o for o in ops if o and o not in ignore}


def _torch_callable(module: str, name: str) -> bool:
    import torch
    import torch.nn.functional as F

    obj = getattr(F if module.endswith("functional") else torch, name, None)
    return callable(obj) and not isinstance(obj, type)


_SIZE_WORDS = ("shape", "size", "numel", "len", "cdiv", "stride", "dim", "ndim", "BLOCK", "block", "grid")


def _tensor_arith(*operands: ast.expr) -> bool:
    """Whether arithmetic may be tensor work: not between literals only, and not size or launch
    arithmetic (an operand that mentions shape/size/numel/len/cdiv/BLOCK/grid...)."""
    if all(isinstance(o, ast.Constant) for o in operands):
        return False
    for o in operands:
        for n in ast.walk(o):
            word = n.attr if isinstance(n, ast.Attribute) else n.id if isinstance(n, ast.Name) else None
            if word and any(w in word for w in _SIZE_WORDS):
                return False
    return True


def reference_ops(task: Task) -> set[str]:
    """The operation keys of a task's ``Model`` class."""
    return _reference_ops_cached(task.source)


@lru_cache(maxsize=256)
def _reference_ops_cached(source: str) -> frozenset[str]:
    return frozenset(read_source(source, class_name="Model").ops)


def gone_ops(ref_ops: set[str] | frozenset[str], cand_ops: set[str]) -> list[str]:
    """Reference operations the candidate calls neither directly nor through an equivalent."""
    groups = catalogue().equivalent_ops
    out = []
    for op in sorted(ref_ops):
        family = {op}.union(*[g for g in groups if op in g])
        if not family & cand_ops:
            out.append(op)
    return out


def computed_by_kernel(op: str, kernel_code: str) -> bool:
    """Whether custom kernel code plausibly computes ``op``: the op's name or a hint word appears."""
    if not kernel_code:
        return False
    hints = catalogue().op_hints.get(op)
    low = kernel_code.lower()
    if hints is None:
        return True
    return op in low.replace("_", "") or any(h.lower() in low for h in hints)


