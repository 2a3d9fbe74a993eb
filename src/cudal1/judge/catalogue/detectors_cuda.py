"""Detectors that read the C++/CUDA sources handed to ``load_inline`` (comments stripped),
plus lower precision, which shows up in both Python and CUDA code."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from .context import ScanContext, detector, short

Hit = Iterator[tuple[int, str]]

_STREAM_CREATE = re.compile(
    r"\b(?:cudaStreamCreate(?:WithFlags|WithPriority)?|cuStreamCreate(?:WithPriority)?|getStreamFromPool"
    r"|getStreamFromExternal|hipStreamCreate\w*)\b")
_PER_THREAD = re.compile(r"\b(?:cudaStreamPerThread|CU_STREAM_PER_THREAD|cudaStreamNonBlocking)\b")
_LAUNCH = re.compile(r"<<<(.*?)>>>", re.S)
_DEFAULT_STREAM_ARG = re.compile(r"^(?:0|0L|0u|nullptr|NULL|cudaStreamLegacy|cudaStreamDefault|\(cudaStream_t\)\s*0)$")
_CURRENT_STREAM_EXPR = re.compile(r"getCurrent(?:CUDA|HIP)?Stream|getDefault(?:CUDA|HIP)?Stream|current_stream")


def _split_top_level(args: str) -> list[str]:
    out, depth, cur = [], 0, []
    for ch in args:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _stream_is_current(code: str, arg: str) -> bool:
    """False when the launch's stream argument is a stream this source creates.

    Any other stream expression (a parameter, a cast of a pointer handed in from Python) is
    trusted here: the Python side that supplies it is checked by `side_stream`, and the
    judge's device-wide synchronize covers the rest at run time.
    """
    if _DEFAULT_STREAM_ARG.match(arg) or _CURRENT_STREAM_EXPR.search(arg):
        return True
    for ident in re.findall(r"[A-Za-z_]\w*", arg):
        if re.search(rf"(?:cudaStreamCreate\w*|cuStreamCreate\w*)\s*\(\s*&\s*{ident}\b", code) or re.search(
                rf"\b{ident}\s*=\s*[^;]*(?:getStreamFromPool|getStreamFromExternal)", code):
            return False
    return True


@detector
def side_stream_cuda(tree, source, ctx: ScanContext) -> Hit:
    for src in ctx.native_sources:
        for line, m in src.find(_STREAM_CREATE):
            yield line, f"native code creates a CUDA stream ({m.group(0)})"
        for line, m in src.find(_PER_THREAD):
            yield line, f"native code uses a stream other than PyTorch's current one ({m.group(0)})"
        for line, m in src.find(_LAUNCH):
            args = _split_top_level(m.group(1))
            if len(args) >= 4 and not _stream_is_current(src.code, args[3]):
                yield line, f"kernel launch <<<{m.group(1).strip()}>>> runs on stream `{args[3]}`, a side stream"


_L2 = re.compile(r"\b(?:cudaStreamSetAttribute|cuStreamSetAttribute|accessPolicyWindow|cudaAccessPropertyPersisting"
                 r"|cudaLimitPersistingL2CacheSize|CU_LIMIT_PERSISTING_L2_CACHE_SIZE|CU_ACCESS_PROPERTY_PERSISTING"
                 r"|cudaStreamAttributeAccessPolicyWindow|cudaKernelNodeAttributeAccessPolicyWindow)\b")


@detector
def l2_persistence(tree, source, ctx: ScanContext) -> Hit:
    for line, m in ctx.native_matches(_L2):
        yield line, f"native code sets L2 persistence ({m.group(0)})"
    for node in ctx.nodes:
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        if name and _L2.fullmatch(name):
            yield node.lineno, f"{short(node)} sets L2 persistence"


_LOW_DTYPES = ("float16", "half", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
               "complex32", "chalf")
_LOW_METHODS = ("half", "bfloat16")
_AUTOCAST = ("torch.autocast", "torch.amp.autocast", "torch.cuda.amp.autocast", "torch.cpu.amp.autocast")
_NATIVE_LOW = re.compile(r"\b(?:__half2?|half2|__nv_bfloat16(?:2)?|nv_bfloat16|__float2half\w*|__half2float"
                         r"|__float2bfloat16\w*|__bfloat162float|c10::Half|c10::BFloat16|at::Half|at::BFloat16"
                         r"|at::kHalf|at::kBFloat16|wmma::precision::tf32|__float_to_tf32|tf32|__nv_fp8\w*)\b"
                         r"|cuda_fp16\.h|cuda_bf16\.h")


def _low_precision_names(tree: ast.AST, ctx: ScanContext) -> Iterator[tuple[int, str]]:
    for node in ctx.nodes:
        if isinstance(node, ast.Attribute):
            q = ctx.qualname(node) or ""
            root = q.split(".")[0]
            if node.attr in _LOW_DTYPES and root in ("torch", "triton", "numpy"):
                yield node.lineno, f"{q} is a lower-precision dtype"
        if isinstance(node, ast.Call):
            q = ctx.qualname(node.func)
            if q in _AUTOCAST:
                yield node.lineno, f"{short(node)} computes in lower precision"
            elif isinstance(node.func, ast.Attribute) and node.func.attr in _LOW_METHODS and not node.args:
                yield node.lineno, f"{short(node)} converts to a lower-precision dtype"


@detector
def lower_precision(tree, source, ctx: ScanContext) -> Hit:
    if ctx.reference_source:
        try:
            ref_tree = ast.parse(ctx.reference_source)
        except SyntaxError:
            ref_tree = None
        if ref_tree is not None:
            ref_ctx = ScanContext.build(ref_tree, ctx.reference_source)
            if any(True for _ in _low_precision_names(ref_tree, ref_ctx)):
                return  # the reference itself computes in lower precision
    yield from _low_precision_names(tree, ctx)
    for line, m in ctx.native_matches(_NATIVE_LOW):
        yield line, f"native code computes in lower precision ({m.group(0)})"
