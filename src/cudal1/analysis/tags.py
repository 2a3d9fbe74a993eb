"""Technique tags: what a candidate does to be fast, read from its source and from what ran.

The tags are data (``tags.yaml``: id, name, summary, why, evidence); this module holds one
detector per id. A detector gets the candidate's `SourceFacts` (an AST reading of the
source), the reference's operations and the judge's `Verdict` when there is one, and returns
the evidence it found (empty: not tagged).

    tag_candidate(task, source, verdict=None) -> ["custom-cuda-kernel", "shared-memory"]
    find_tags(task, source, verdict=None)     -> [TagHit(id, origin, evidence), ...]
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

from ..judge.verdict import Verdict
from ..tasks.contract import Task
from .catalogue import CATALOGUE_PATH, Catalogue, TagDef, TagHit, catalogue
from .source import (
    _COMMENT_RE, BUILDERS, SourceFacts, _dotted, computed_by_kernel, gone_ops, op_key, read_source, reference_ops,
)

__all__ = [
    "BUILDERS", "CATALOGUE_PATH", "Catalogue", "DETECTORS", "SourceFacts", "TagDef", "TagHit", "catalogue",
    "catalogue_markdown", "computed_by_kernel", "find_tags", "gone_ops", "launch_count", "op_key", "read_source",
    "reference_ops", "tag_candidate",
]


# --- evidence from what ran ----------------------------------------------------------------
def _kernel_names(kernels) -> list[str]:
    out = []
    for k in kernels or ():
        if isinstance(k, str):
            out.append(k)
        elif isinstance(k, dict):
            out.append(str(k.get("name", "")))
        else:
            out.append(str(getattr(k, "name", "")))
    return [n for n in out if n]


def launch_count(kernels) -> int | None:
    """Kernel launches in a kernel list: the sum of ``calls`` when every entry has them, else
    the number of distinct kernels. None for an empty or missing list."""
    items = list(kernels or ())
    if not items:
        return None
    calls = []
    for k in items:
        c = k.get("calls", 0) if isinstance(k, dict) else getattr(k, "calls", 0)
        calls.append(int(c or 0))
    return sum(calls) if all(c > 0 for c in calls) else len(items)


def _mentions(kernel_name: str, fn: str) -> bool:
    return re.search(rf"(^|[^\w]){re.escape(fn)}([^\w]|$)", kernel_name) is not None


# --- detectors ------------------------------------------------------------------------------
@dataclass
class Evidence:
    """What a detector looks at."""

    facts: SourceFacts
    ref_ops: frozenset[str] | None
    verdict: Verdict | None

    @property
    def kernels(self) -> list[str]:
        return _kernel_names(self.verdict.kernels) if self.verdict else []

    @property
    def ref_kernels(self) -> list:
        return list(self.verdict.details.ref_kernels or []) if self.verdict else []


Detector = Callable[[Evidence], tuple[list[str], list[str]]]  # -> (source evidence, run evidence)
DETECTORS: dict[str, Detector] = {}


def detector(tag_id: str):
    def register(fn: Detector) -> Detector:
        DETECTORS[tag_id] = fn
        return fn

    return register


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _const(node) -> object:
    return node.value if isinstance(node, ast.Constant) else None


GRAPH_COMPILE_MODES = ("reduce-overhead", "max-autotune")


@detector("cuda-graph")
def _cuda_graph(ev: Evidence):
    f, src = ev.facts, []
    for name in ("torch.cuda.CUDAGraph", "torch.cuda.graph", "torch.cuda.make_graphed_callables",
                 "torch.cuda.graphs.CUDAGraph", "torch.cuda.graphs.graph"):
        if f.called(name):
            src.append(f"calls {name}")
    for call in f.called("torch.compile"):
        mode = _const(_kw(call, "mode"))
        if mode in GRAPH_COMPILE_MODES:
            src.append(f"torch.compile(mode={mode!r}) captures CUDA graphs")
        opts = _kw(call, "options")
        if isinstance(opts, ast.Dict) and any(_const(k) == "triton.cudagraphs" and _const(v) is True
                                              for k, v in zip(opts.keys, opts.values)):
            src.append("torch.compile(options={'triton.cudagraphs': True})")
    return src, []


@detector("torch-compile")
def _torch_compile(ev: Evidence):
    f = ev.facts
    src = [f"uses {n}" for n in ("torch.compile", "torch._dynamo.optimize") if f.called(n)]
    src += sorted({f"uses {n}" for n in f.names if n.startswith("torch._inductor")})
    cat, own = catalogue(), set(f.triton_kernels)
    run = [f"launched {k}" for k in ev.kernels if cat.inductor_kernel_re.search(k) and not any(_mentions(k, o) for o in own)]
    return src, run[:3]


@detector("custom-cuda-kernel")
def _custom_cuda(ev: Evidence):
    f = ev.facts
    src = []
    if f.cuda_kernels and f.builder_calls:
        src.append(f"builds CUDA kernel(s) {', '.join(f.cuda_kernels)} with {', '.join(sorted(set(f.builder_calls)))}")
    if any(b.startswith(("numba.cuda", "torch.cuda.jiterator")) for b in f.builder_calls):
        src.append("builds a kernel with " + ", ".join(sorted({b for b in f.builder_calls if b.startswith(("numba", "torch.cuda"))})))
    src += [f"compiles {p}" for p in f.native_files if p.endswith(".cu")]
    run = [f"launched {k}" for k in ev.kernels if any(_mentions(k, fn) for fn in f.cuda_kernels)]
    return src, run[:3]


@detector("custom-cpp-kernel")
def _custom_cpp(ev: Evidence):
    f = ev.facts
    if f.cpp_compute and f.builder_calls:
        files = [p for p in f.native_files if p.endswith((".cpp", ".cc", ".cxx"))]
        return ([f"compiles {', '.join(files)}"] if files else ["builds C++ code with a compute loop (cpp_sources)"]), []
    return [], []


@detector("triton-kernel")
def _triton(ev: Evidence):
    f = ev.facts
    src = [f"defines @triton.jit kernel(s) {', '.join(f.triton_kernels)}"] if f.triton_kernels else []
    run = [f"launched {k}" for k in ev.kernels if any(_mentions(k, fn) for fn in f.triton_kernels)]
    return src, run[:3]


@detector("op-fusion")
def _fusion(ev: Evidence):
    cand, ref = launch_count(ev.verdict.kernels if ev.verdict else ()), launch_count(ev.ref_kernels)
    if cand is not None and ref is not None:
        return [], ([f"{cand} kernel launches against the reference's {ref}"] if cand < ref else [])
    f = ev.facts
    if ev.ref_ops is None or not f.has_custom_kernel:
        return [], []
    replaced = [op for op in gone_ops(ev.ref_ops, f.ops) if computed_by_kernel(op, f.kernel_code())]
    kernels = len(f.cuda_kernels) + len(f.triton_kernels) + (1 if f.cpp_compute else 0)
    if len(replaced) >= 2 and len(replaced) > kernels:
        return [f"{kernels} custom kernel(s) compute the reference's {', '.join(replaced)}"], []
    return [], []


_SHARED_RE = re.compile(r"__shared__")
_WARP_RE = re.compile(
    r"__shfl(?:_xor|_down|_up)?_sync|__reduce_(?:add|min|max|and|or|xor)_sync|__ballot_sync|__any_sync|"
    r"__all_sync|__activemask|cooperative_groups|cub::WarpReduce|cg::reduce"
)
_VEC_CUDA_RE = re.compile(r"\b(?:float4|float2|int4|int2|double2|half2|__half2|__nv_bfloat162|uint4)\b|ld\.global\.v[24]|__ldg\s*\(")
_VEC_CPP_RE = re.compile(r"at::vec::Vectorized|_mm256_|_mm512_|__m256|__m512|#\s*pragma\s+omp\s+(?:parallel\s+for\s+)?simd")
_HALF_CUDA_RE = re.compile(r"\b(?:__half2?|half2?|__nv_bfloat162?|wmma|__float2half\w*|__hmul2?|__hfma2?)\b|mma\.sync\.\w*\.(?:f16|bf16|tf32)")


def _code_matches(codes: list[str], pattern: re.Pattern) -> list[str]:
    found = sorted({m.group(0) for c in codes for m in pattern.finditer(_COMMENT_RE.sub("", c))})
    return found


@detector("shared-memory")
def _shared(ev: Evidence):
    hits = _code_matches(ev.facts.cuda_code, _SHARED_RE)
    return (["__shared__ in the CUDA code"] if hits else []), []


@detector("warp-primitives")
def _warp(ev: Evidence):
    hits = _code_matches(ev.facts.cuda_code, _WARP_RE)
    return ([f"uses {', '.join(hits)}"] if hits else []), []


@detector("vectorized-access")
def _vectorized(ev: Evidence):
    f = ev.facts
    hits = _code_matches(f.cuda_code, _VEC_CUDA_RE) + _code_matches(f.cpp_code, _VEC_CPP_RE)
    hits += sorted({n for n in ("triton.language.multiple_of", "triton.language.max_contiguous") if f.called(n)})
    return ([f"uses {', '.join(hits)}"] if hits else []), []


@detector("channels-last")
def _channels_last(ev: Evidence):
    f = ev.facts
    for name, call in f.calls:
        mf = _kw(call, "memory_format")
        if mf is not None and (_dotted(mf) or "").endswith(("channels_last", "channels_last_3d")):
            return [f"{name.rsplit('.', 1)[-1]}(memory_format={_dotted(mf)})"], []
    return [], []


@detector("cudnn-benchmark")
def _cudnn_benchmark(ev: Evidence):
    f = ev.facts
    src = [f"{t} = True" for t, v in f.assigns if t.endswith("cudnn.benchmark") and _const(v) is True]
    src += ["cudnn.flags(benchmark=True)" for c in f.called("torch.backends.cudnn.flags") if _const(_kw(c, "benchmark")) is True]
    return src, []


@detector("algebraic-simplification")
def _algebraic(ev: Evidence):
    if ev.ref_ops is None:
        return [], []
    f = ev.facts
    code = f.kernel_code() if f.has_custom_kernel else ""
    gone = [op for op in gone_ops(ev.ref_ops, f.ops) if not computed_by_kernel(op, code)]
    return ([f"the reference's {', '.join(gone)} no longer computed"] if gone else []), []


_LOWP_DTYPES = ("torch.float16", "torch.half", "torch.bfloat16")


@detector("lower-precision")
def _lower_precision(ev: Evidence):
    f, src = ev.facts, []
    methods = sorted({n.rsplit(".", 1)[-1] for n, c in f.calls
                      if isinstance(c.func, ast.Attribute) and c.func.attr in ("half", "bfloat16") and not n.startswith("torch.")})
    src += [f".{m}()" for m in methods]
    src += sorted({d for d in _LOWP_DTYPES if d in f.names})
    src += [f"uses {n}" for n in ("torch.autocast", "torch.cuda.amp.autocast", "torch.amp.autocast") if f.called(n)]
    src += [f"{t} = True" for t, v in f.assigns if t.endswith("allow_tf32") and _const(v) is True]
    for c in f.called("torch.set_float32_matmul_precision"):
        if c.args and _const(c.args[0]) in ("high", "medium"):
            src.append(f"set_float32_matmul_precision({_const(c.args[0])!r})")
    hits = _code_matches(f.cuda_code, _HALF_CUDA_RE)
    if hits:
        src.append(f"CUDA code uses {', '.join(hits)}")
    run: list[str] = []
    cat = catalogue()
    if ev.verdict is not None:
        run += [f"judge finding {i}" for i in ev.verdict.finding_ids() if i in cat.lower_precision_findings]
        ref_low = any(cat.lower_precision_kernel_re.search(k) for k in _kernel_names(ev.ref_kernels))
        if not ref_low:
            run += [f"launched {k}" for k in ev.kernels if cat.lower_precision_kernel_re.search(k)][:3]
    return src, run


# --- public API -----------------------------------------------------------------------------
def find_tags(task: Task | None, source: str, verdict: Verdict | None = None) -> list[TagHit]:
    """Every technique tag of a candidate with its evidence, in catalogue order.

    ``task`` gives the reference operations (for algebraic-simplification and the source-level
    op-fusion evidence); ``verdict`` adds what ran (kernel names, reference kernels, findings).
    A source that does not parse has no tags.
    """
    try:
        facts = read_source(source)
    except SyntaxError:
        return []
    ref = None
    if task is not None:
        try:
            ref = reference_ops(task)
        except SyntaxError:
            ref = None
    ev = Evidence(facts=facts, ref_ops=ref, verdict=verdict)
    hits = []
    for tag in catalogue().tags:
        src, run = DETECTORS[tag.id](ev)
        if src or run:
            hits.append(TagHit(tag.id, "run" if run and not src else ("source+run" if run else "source"), tuple(src + run)))
    return hits


def tag_candidate(task: Task | None, source: str, verdict: Verdict | None = None) -> list[str]:
    """The technique tag ids of a candidate (see ``tags.yaml``), in catalogue order."""
    return [h.id for h in find_tags(task, source, verdict)]


def catalogue_markdown() -> str:
    """The catalogue as Markdown (the technique table of docs/explain.md comes from here)."""
    lines = []
    for t in catalogue().tags:
        lines += [f"### `{t.id}` — {t.name}", "", t.summary, "", f"- **Why it can be faster:** {t.why}",
                  f"- **Source evidence:** {t.source}"]
        if t.run:
            lines.append(f"- **Run evidence:** {t.run}")
        lines += [f"- **Example:** `{t.example}`", ""]
    return "\n".join(lines)
