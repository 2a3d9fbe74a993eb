"""Generated kernels: fused elementwise epilogues and row-wise reductions.

* **Epilogues.** After a matmul, linear or convolution, the chain of elementwise operators
  that only it feeds (bias adds, activations, scaling, clamps, residual adds) becomes one
  kernel: one read of the product and of each operand, one write, instead of one pass per
  operator. Operands may be Python numbers, one-element tensors, per-channel vectors (a
  parameter broadcast along one dim) or tensors of the output's shape.
* **Row reductions.** softmax and log_softmax over the last dim, LayerNorm over the trailing
  dims (with a split-row path when a few very long rows would leave most SMs idle), and
  sum/mean over the last dim.

Kernels are rendered from jinja2 templates (``templates/kernels.cu.j2`` for CUDA with
16-byte vectorized loads when aligned, launch sizes from the device's SM count and the
current stream; ``templates/kernels.cpp.j2`` for CPU with OpenMP) and built by the candidate
with ``torch.utils.cpp_extension.load_inline`` when it is imported. fp32 only, no fast-math.
The same kernels can be written in Triton instead (``Fused.forward(..., backend="triton")``,
triton_backend.py); each operator's formula is spelled per language in expressions.py.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import torch
from torch import fx
from torch.fx.passes.shape_prop import ShapeProp

from .analysis import TracedTask, node_dtype, node_shape
from .codegen import GraphForward, Helper, graph_forward, with_guard
from .expressions import BINARY, DIALECTS, UNARY, Dialect, binary, clamp
from .graph_utils import arg, graph_has_inplace, kind, module_of
from .norms import written_rms

TEMPLATES = Path(__file__).parent / "templates"
ANCHORS = {"linear", "matmul", "mm", "bmm", "addmm", "conv", "conv_transpose"}


@dataclass
class Operand:
    var: str
    mode: str  # scalar | channel | full
    dim: int = 0
    node: fx.Node | None = None

    @property
    def load(self) -> str:
        if self.mode == "full":
            return f"{self.var}_ptr[i]"
        if self.mode == "channel":
            return f"{self.var}_ptr[(i / {self.var}_inner) % {self.var}_size]"
        return f"{self.var}_ptr[0]"


@dataclass
class EpilogueKernel:
    name: str
    doc: str
    operands: list[Operand]
    bodies: dict[str, list[str]]  # dialect name -> one line per operator
    result: str
    kind: str = "epilogue"

    @property
    def body(self) -> list[str]:
        return self.bodies["cpp"]

    @property
    def signature(self) -> str:
        return f"torch::Tensor {self.name}(torch::Tensor y" + "".join(f", torch::Tensor {o.var}" for o in self.operands) + ");"


@dataclass
class RowKernel:
    name: str
    doc: str
    op: str  # softmax | log_softmax | layer_norm | sum | mean
    keepdim: bool = False
    normalized_dims: int = 1
    kind: str = "row"

    @property
    def row_numel_expr(self) -> str:
        return " * ".join(f"x.size({-i})" for i in range(1, self.normalized_dims + 1))

    @property
    def signature(self) -> str:
        if self.op == "layer_norm":
            return (f"torch::Tensor {self.name}(torch::Tensor x, c10::optional<torch::Tensor> weight, "
                    f"c10::optional<torch::Tensor> bias, double eps);")
        return f"torch::Tensor {self.name}(torch::Tensor x);"


@dataclass
class RmsKernel:
    """RMS normalization over the contiguous dims [dim_start, dim_end): x / sqrt(mean(x^2) + eps),
    times an optional weight over the normalized positions."""

    name: str
    doc: str
    dim_start: int
    dim_end: int
    op: str = "rms_norm"
    kind: str = "rms"

    @property
    def signature(self) -> str:
        return f"torch::Tensor {self.name}(torch::Tensor x, c10::optional<torch::Tensor> weight, double eps);"


class _Region:
    """An elementwise region after an anchor, being turned into kernel code (every dialect)."""

    def __init__(self, anchor: fx.Node, gm: fx.GraphModule, out_shape):
        self.anchor, self.gm, self.shape = anchor, gm, tuple(out_shape)
        self.nodes: list[fx.Node] = []
        self.vars: dict[fx.Node, str] = {anchor: "y"}
        self.operands: list[Operand] = []
        self.bodies: dict[str, list[str]] = {d.name: [] for d in DIALECTS}

    def operand(self, a, d: Dialect) -> str | None:
        """Expression for an argument outside the region, registering an operand if needed."""
        if isinstance(a, bool):
            return None
        if isinstance(a, (int, float)):
            return d.lit(a)
        if not isinstance(a, fx.Node):
            return None
        if a in self.vars:
            return self.vars[a]
        for o in self.operands:
            if o.node is a:
                return o.var
        shape, dtype = node_shape(a), node_dtype(a)
        if shape is None or dtype != torch.float32:
            return None
        n = len(self.shape)
        if len(shape) > n:
            return None
        padded = (1,) * (n - len(shape)) + tuple(shape)
        var = f"w{len(self.operands)}"
        if all(s == 1 for s in padded):
            op = Operand(var, "scalar", node=a)
        elif padded == self.shape:
            op = Operand(var, "full", node=a)
        else:
            non1 = [d for d, s in enumerate(padded) if s != 1]
            if len(non1) != 1 or padded[non1[0]] != self.shape[non1[0]]:
                return None
            op = Operand(var, "channel", dim=non1[0], node=a)
        self.operands.append(op)
        return op.var

    def expression(self, node: fx.Node, k: str, d: Dialect) -> str | None:
        if k in BINARY and len(node.args) == 2 and not node.kwargs:
            a, b = self.operand(node.args[0], d), self.operand(node.args[1], d)
            return binary(k, a, b, d) if a is not None and b is not None else None
        if k in UNARY and node.args and node.args[0] in self.vars and not node.kwargs.get("inplace"):
            return UNARY[k](self.vars[node.args[0]], node, self.gm, d)
        if k in ("clamp", "clamp_min", "clamp_max") and node.args and node.args[0] in self.vars:
            lo = arg(node, 1, "min") if k in ("clamp", "clamp_min") else None
            hi = arg(node, 2 if k == "clamp" else 1, "max") if k in ("clamp", "clamp_max") else None
            if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in (lo, hi)):
                return clamp(self.vars[node.args[0]], lo, hi, d)
        return None

    def try_add(self, node: fx.Node) -> bool:
        k = kind(node, self.gm)
        if node_shape(node) != self.shape or node_dtype(node) != torch.float32:
            return False
        if node.op == "call_module" and k not in UNARY:
            return False
        saved = len(self.operands)
        exprs = {d.name: self.expression(node, k, d) for d in DIALECTS}
        if any(e is None for e in exprs.values()):
            del self.operands[saved:]
            return False
        var = f"v{len(self.nodes)}"
        for d in DIALECTS:
            self.bodies[d.name].append(d.assign(var, exprs[d.name]))
        self.vars[node] = var
        self.nodes.append(node)
        return True


def _grow(anchor: fx.Node, gm: fx.GraphModule) -> _Region | None:
    """The largest elementwise region after ``anchor`` with one exit: walking the graph in
    order, every node that reads a region value joins while it can (``x * sigmoid(x)`` and
    residual adds of the anchor included); then the region is cut back to the longest prefix
    whose values, except the last, are used only inside it."""
    if node_shape(anchor) is None or node_dtype(anchor) != torch.float32:
        return None
    probe = _Region(anchor, gm, node_shape(anchor))
    started = False
    for n in gm.graph.nodes:
        if n is anchor:
            started = True
            continue
        if not started or n.op == "output":
            continue
        if not any(a in probe.vars for a in n.all_input_nodes):
            continue
        if not probe.try_add(n):
            break
    nodes = probe.nodes
    for k in range(len(nodes), 0, -1):
        inside = set(nodes[:k]) | {anchor}
        if all(u in inside for m in [anchor, *nodes[: k - 1]] for u in m.users):
            region = _Region(anchor, gm, node_shape(anchor))
            for n in nodes[:k]:
                if not region.try_add(n):
                    return None
            return region
    return None


def _describe(nodes, gm) -> str:
    return " -> ".join(kind(n, gm) for n in nodes)


@dataclass
class Fused:
    graph_module: fx.GraphModule
    rewrites: list
    kernels: list
    device: str
    helpers: list[Helper] = field(default_factory=list)
    base_helpers: list[Helper] = field(default_factory=list)
    base_sources: list[str] = field(default_factory=list)
    base_init: list[str] = field(default_factory=list)
    base_imports: list[str] = field(default_factory=list)
    shape_guard: str | None = None  # `tracing.shape_guard`

    def kernel_sources(self) -> tuple[str, str]:
        """(C++ declarations, kernel source) for this device."""
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True,
                                 trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
        name = "kernels.cu.j2" if self.device.startswith("cuda") else "kernels.cpp.j2"
        src = env.get_template(name).render(kernels=self.kernels)
        decls = "#include <torch/extension.h>\n" + "\n".join(k.signature for k in self.kernels) + "\n"
        return decls, src

    def extension_block(self) -> str:
        decls, src = self.kernel_sources()
        digest = hashlib.sha256((decls + src).encode()).hexdigest()[:12]
        names = ", ".join(repr(k.name) for k in self.kernels)
        if self.device.startswith("cuda"):
            build = (f'_kernels = load_inline(\n    name="cudal1_fused_{digest}",\n    cpp_sources=_DECLARATIONS,\n'
                     f'    cuda_sources=_KERNELS_SOURCE,\n    functions=[{names}],\n'
                     '    extra_cflags=["-O3"],\n    extra_cuda_cflags=["-O3"],  # no --use_fast_math: accuracy first\n)')
        else:
            build = (f'_kernels = load_inline(\n    name="cudal1_fused_{digest}",\n    cpp_sources=[_DECLARATIONS, _KERNELS_SOURCE],\n'
                     f'    functions=[{names}],\n    extra_cflags=["-O3", "-fopenmp"],\n    extra_ldflags=["-fopenmp"],\n)')
        return (f"_DECLARATIONS = r'''\n{decls}'''\n\n_KERNELS_SOURCE = r'''\n{src}'''\n\n"
                f"# Built once when this file is imported (cached by torch under the name's hash).\n{build}")

    def forward(self, method_name: str, backend: str = "cpp") -> GraphForward:
        """The rewritten forward with its kernels: ``backend`` "cpp" (CUDA C++ or C++/OpenMP,
        built with load_inline) or "triton" (CUDA devices; see triton_backend.py)."""
        if backend == "triton":
            from . import triton_backend

            helpers = triton_backend.launchers(self.kernels, self.helpers)
            imports, blocks = triton_backend.IMPORTS, [triton_backend.prelude_source()]
        else:
            helpers = self.helpers
            imports, blocks = ["from torch.utils.cpp_extension import load_inline"], [self.extension_block()]
        gf = graph_forward(self.graph_module, method_name, helpers + self.base_helpers)
        gf.method = with_guard(gf.method, self.shape_guard)
        gf.imports = [*imports, *self.base_imports, *gf.imports]
        gf.helpers = [*blocks, *self.base_sources, *gf.helpers]
        gf.init_lines = list(self.base_init) + gf.init_lines
        return gf


def _launcher(name: str, params: list[str], doc: str) -> Helper:
    """A Python function the graph calls: here it only preserves shapes (for analysis); in the
    candidate it launches the compiled kernel."""
    args = ", ".join(params)

    def fn(*a, **k):
        raise RuntimeError("a fused kernel is only run inside a candidate")

    source = f'def {name}({args}):\n    """{doc}"""\n    return _kernels.{name}({args})\n'
    fn.__name__ = name
    return Helper(name, fn, source)


def _row_kernel_for(node: fx.Node, gm: fx.GraphModule, index: int) -> tuple[RowKernel, list] | None:
    k = kind(node, gm)
    shape = node_shape(node.args[0]) if node.args else None
    if shape is None or node_dtype(node.args[0]) != torch.float32 or not shape or shape[-1] < 2:
        return None  # a row of one element is not worth a kernel
    nd = len(shape)
    mod = module_of(node, gm)
    name = f"row_{k}_{index}"
    if k in ("softmax", "log_softmax"):
        dim = mod.dim if mod is not None else arg(node, 1, "dim")
        if not isinstance(dim, int) or dim % nd != nd - 1 or node.kwargs.get("dtype") is not None or shape[-1] < 2:
            return None
        if node.op == "call_function" and len(node.args) > 2:
            return None
        return RowKernel(name, f"{k} over the last dim", k), [node.args[0]]
    if k in ("sum", "mean") and node.op in ("call_function", "call_method"):
        dim = arg(node, 1, "dim")
        keepdim = arg(node, 2, "keepdim", False)
        if isinstance(dim, (list, tuple)) and len(dim) == 1:
            dim = dim[0]
        if not isinstance(dim, int) or dim % nd != nd - 1 or "dtype" in node.kwargs or len(node.args) > 3 or not isinstance(keepdim, bool):
            return None
        return RowKernel(name, f"{k} over the last dim", k, keepdim=keepdim), [node.args[0]]
    if k == "layer_norm":
        if mod is not None:
            ns, eps = tuple(mod.normalized_shape), mod.eps
            w = b = None
            if mod.elementwise_affine:
                with gm.graph.inserting_before(node):
                    w = gm.graph.get_attr(f"{node.target}.weight")
                    b = gm.graph.get_attr(f"{node.target}.bias") if mod.bias is not None else None
        else:
            ns, w, b, eps = arg(node, 1, "normalized_shape"), arg(node, 2, "weight"), arg(node, 3, "bias"), arg(node, 4, "eps", 1e-5)
            if not isinstance(ns, (list, tuple)) or not all(isinstance(v, int) for v in ns) or not isinstance(eps, float):
                return None
        if tuple(shape[nd - len(ns):]) != tuple(ns):
            return None
        rk = RowKernel(name, f"layer_norm over the last {len(ns)} dim(s)", "layer_norm", normalized_dims=len(ns))
        return rk, [node.args[0], w, b, float(eps)]
    return None


def _rms_norm_for(node: fx.Node, gm: fx.GraphModule, index: int):
    """(kernel, call args, nodes the kernel replaces, last first) for an RMS normalization
    ending at ``node``, else None. Matches RMSNorm modules and ``F.rms_norm`` over trailing dims,
    and the written-out form ``x / sqrt(mean(x**2 | x*x, dim=d, keepdim=True) + eps)`` or
    ``x * rsqrt(...)`` over one dim, whose intermediate values are used nowhere else."""
    k = kind(node, gm)
    name = f"rms_norm_{index}"
    if k == "rms_norm":
        x = node.args[0] if node.args else None
        shape = node_shape(x)
        if shape is None or node_dtype(x) != torch.float32:
            return None
        mod = module_of(node, gm)
        if mod is not None:
            ns, eps, w = tuple(mod.normalized_shape), mod.eps, None
            if mod.weight is not None:
                with gm.graph.inserting_before(node):
                    w = gm.graph.get_attr(f"{node.target}.weight")
        else:
            ns, w, eps = arg(node, 1, "normalized_shape"), arg(node, 2, "weight"), arg(node, 3, "eps")
            if not isinstance(ns, (list, tuple)) or not all(isinstance(v, int) for v in ns):
                return None
        eps = float(torch.finfo(torch.float32).eps) if eps is None else eps  # torch's default for eps=None
        nd = len(shape)
        if not isinstance(eps, float) or not ns or tuple(shape[nd - len(ns):]) != tuple(ns):
            return None
        return RmsKernel(name, f"rms_norm over the last {len(ns)} dim(s)", nd - len(ns), nd), [x, w, float(eps)], [node]
    # written out: x / sqrt(E) or x * rsqrt(E), E = mean(x**2, dim=d, keepdim=True) + eps
    found = written_rms(node, gm)
    if found is None:
        return None
    x, dims, eps, replaced = found
    shape = node_shape(x)
    if len(dims) != 1 or node_dtype(x) != torch.float32 or node_shape(node) != shape:
        return None
    d = dims[0]
    return RmsKernel(name, f"rms_norm over dim {d} (written out)", d, d + 1), [x, None, float(eps)], replaced


def fuse(traced: TracedTask, device: str, base=None) -> Fused | None:
    """Fuse epilogues and replace row reductions in the traced (or already simplified) graph.
    None when nothing applies."""
    if traced.graph_module is None:
        return None
    src_gm = base.graph_module if base is not None else traced.graph_module
    gm = fx.GraphModule(src_gm, copy.deepcopy(src_gm.graph))
    ShapeProp(gm).propagate(*traced.input_values)
    if graph_has_inplace(gm):
        return None
    kernels: list = []
    helpers: list[Helper] = []
    rewrites: list[str] = []
    # RMS normalizations first (their mean is the kernel's), then row reductions
    def rms(n, index):
        found = _rms_norm_for(n, gm, index)
        return None if found is None else (*found[:2], ["x", "weight", "eps"], found[2], "rms-norm-kernel")

    def row(n, index):
        found = _row_kernel_for(n, gm, index)
        if found is None:
            return None
        params = ["x", "weight", "bias", "eps"] if found[0].op == "layer_norm" else ["x"]
        return (*found, params, [n], "row-kernel")

    for match in (rms, row):
        for n in list(gm.graph.nodes):
            if n.op not in ("call_function", "call_method", "call_module"):
                continue
            found = match(n, len(kernels))
            if found is None:
                continue
            rk, args, params, replaced, label = found
            h = _launcher(rk.name, params, rk.doc + " (generated kernel)")
            with gm.graph.inserting_before(n):
                new = gm.graph.create_node("call_function", h.fn, tuple(args), name=f"{rk.name}_out")
            new.meta = dict(n.meta)
            n.replace_all_uses_with(new)
            for r in replaced:  # the matched node first, then what only it used
                gm.graph.erase_node(r)
            kernels.append(rk)
            helpers.append(h)
            rewrites.append(f"{label}: {rk.doc} -> {rk.name}")
    # epilogues
    for n in list(gm.graph.nodes):
        # after a matmul/conv; or a chain of 2+ elementwise operators on a forward input
        if n.op == "placeholder":
            region = _grow(n, gm)
            if region is None or len(region.nodes) < 2:
                continue
        elif n.op in ("call_function", "call_method", "call_module") and kind(n, gm) in ANCHORS:
            region = _grow(n, gm)
            if region is None:
                continue
        else:
            continue
        name = f"epilogue_{len(kernels)}"
        doc = f"{'input ' + n.name if n.op == 'placeholder' else kind(n, gm) + ' output'} -> {_describe(region.nodes, gm)}, in one pass"
        ek = EpilogueKernel(name, doc, region.operands, region.bodies, region.vars[region.nodes[-1]])
        h = _launcher(name, ["y"] + [o.var for o in region.operands], doc + " (generated kernel)")
        last = region.nodes[-1]
        with gm.graph.inserting_after(last):
            new = gm.graph.create_node("call_function", h.fn, (n, *[o.node for o in region.operands]), name=f"{name}_out")
        # (a placeholder anchor is read, never written: the kernels are out of place)
        new.meta = dict(last.meta)
        last.replace_all_uses_with(new)
        for r in reversed(region.nodes):
            gm.graph.erase_node(r)
        kernels.append(ek)
        helpers.append(h)
        rewrites.append(f"fused-epilogue: {doc} -> {name}")
    if not kernels:
        return None
    gm.graph.lint()
    gm.recompile()
    fused = Fused(gm, rewrites, kernels, device, helpers, shape_guard=traced.shape_guard)
    if base is not None:
        fused.rewrites = list(base.rewrites) + rewrites
        fused.base_helpers = list(base.helpers)
        fused.base_sources = list(base.extra_helper_sources)
        fused.base_init = list(base.init_lines)
        fused.base_imports = list(base.imports)
    return fused
