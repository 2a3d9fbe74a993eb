"""What a candidate must not change: timers, RNG/input functions, backend state, threads.

Captured in the worker before the candidate is imported, compared after import and after
timing. The timing code itself only uses the captured originals.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time

import torch

TIMING_NAMES = (
    "time.perf_counter", "time.perf_counter_ns", "time.time", "time.monotonic", "time.monotonic_ns",
    "torch.cuda.synchronize", "torch.cuda.Event", "torch.cuda.Event.record", "torch.cuda.Event.elapsed_time",
    "torch.cuda.Event.synchronize", "torch.cuda.current_stream", "torch.cuda.Stream.synchronize", "torch.cuda._sleep",
)
INPUT_NAMES = (
    "torch.manual_seed", "torch.randn", "torch.rand", "torch.randint", "torch.randn_like", "torch.rand_like",
    "torch.empty", "torch.zeros", "torch.ones", "torch.tensor", "torch.Tensor.to", "torch.Tensor.clone",
    "torch.Tensor.cuda", "torch.Tensor.__init__", "torch.Tensor.__new__", "torch.nn.Module.__call__", "torch.nn.Module.to",
    "torch.equal", "torch.save", "torch.take", "torch.Generator",
)


def _resolve(dotted: str):
    parts = dotted.split(".")
    obj = {"time": time, "torch": torch}[parts[0]]
    for p in parts[1:]:
        obj = getattr(obj, p)
    return obj


def capture(names: tuple[str, ...]) -> dict[str, object]:
    out = {}
    for n in names:
        try:
            out[n] = _resolve(n)
        except AttributeError:
            continue
    return out


def changed(snapshot: dict[str, object]) -> list[str]:
    """Names whose object is no longer the captured one."""
    bad = []
    for n, obj in snapshot.items():
        try:
            now = _resolve(n)
        except AttributeError:
            bad.append(n)
            continue
        if now is not obj and not _torch_rewrap(now, obj):
            bad.append(n)
    return bad


def _torch_rewrap(now, original) -> bool:
    """torch itself re-wraps a few functions lazily (importing torch._dynamo wraps
    ``torch.manual_seed`` in ``_disable_dynamo``): a functools wrapper from torch around the very
    object captured is not tampering. (Assigning to torch attributes is a reject finding of the
    static scan, so a forged wrapper does not pass either.)"""
    return getattr(now, "__wrapped__", None) is original and str(getattr(now, "__module__", "")).startswith("torch")


def backend_state() -> dict[str, object]:
    """Global settings that change numerics or speed of *every* program in the process."""
    b = torch.backends
    state = {
        "cudnn.benchmark": b.cudnn.benchmark,
        "cudnn.deterministic": b.cudnn.deterministic,
        "cudnn.allow_tf32": b.cudnn.allow_tf32,
        "cuda.matmul.allow_tf32": b.cuda.matmul.allow_tf32,
        "cuda.matmul.allow_fp16_reduced_precision_reduction": b.cuda.matmul.allow_fp16_reduced_precision_reduction,
        "cuda.matmul.allow_bf16_reduced_precision_reduction": b.cuda.matmul.allow_bf16_reduced_precision_reduction,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "num_threads": torch.get_num_threads(),
        "default_dtype": str(torch.get_default_dtype()),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "grad_enabled": torch.is_grad_enabled(),
    }
    return state


LOWER_PRECISION_KEYS = (
    "cudnn.allow_tf32", "cuda.matmul.allow_tf32", "float32_matmul_precision",
    "cuda.matmul.allow_fp16_reduced_precision_reduction", "cuda.matmul.allow_bf16_reduced_precision_reduction",
    "default_dtype",
)


def native_thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def child_pids() -> list[int]:
    """Live child processes of this process (all threads' children)."""
    pids: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/children") as f:
                    pids += [int(p) for p in f.read().split()]
            except OSError:
                continue
    except OSError:
        pass
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            continue
    return alive


# --- the harness's own integrity -----------------------------------------------------------------
# Everything below is evidence gathered inside the candidate's process: a candidate that owns the
# interpreter could defeat it, so no acceptance rests on it alone (the parent compares every
# output and cross-checks every time against its own clock). It raises the bar for the easy forms:
# rebinding the worker's globals, wrapping its methods, overriding an aten operator or pushing a
# torch function / dispatch mode that runs work outside the timed region.

HARNESS_OPS = (
    "aten::detach", "aten::_to_copy", "aten::copy_", "aten::clone", "aten::fill_.Scalar", "aten::zero_",
    "aten::empty.memory_format", "aten::empty_strided", "aten::randn", "aten::rand", "aten::randint",
    "aten::normal_", "aten::uniform_", "aten::random_.from", "aten::random_.to", "aten::sum", "aten::abs",
    "aten::to.device", "aten::to.dtype", "aten::to.dtype_layout", "aten::view", "aten::reshape",
    "aten::_local_scalar_dense", "aten::neg", "aten::mul.Scalar", "aten::sub.Scalar", "aten::add.Scalar",
    "aten::lift_fresh", "aten::set_.source_Storage",
)
_LOCATION_RE = re.compile(r"registered at (.+?):\d+")


def code_snapshot(namespaces: dict[str, dict]) -> dict[str, tuple]:
    """Identity of every global and method the harness relies on: for each name the object's
    id and, for functions, the ids of its code, defaults and globals."""
    snap = {}
    for prefix, ns in namespaces.items():
        for name, obj in list(ns.items()):
            fn = getattr(obj, "__func__", obj)
            code = getattr(fn, "__code__", None)
            snap[f"{prefix}.{name}"] = (id(obj), id(code), id(getattr(fn, "__defaults__", None)),
                                        id(getattr(fn, "__globals__", None)))
    return snap


def code_changes(before: dict[str, tuple], namespaces: dict[str, dict]) -> list[str]:
    now = code_snapshot(namespaces)
    return sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))


def _registration_locations(dump: str) -> set[str]:
    return {m.group(1) for m in _LOCATION_RE.finditer(dump)}


_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def foreign_registrations(ops=None, allowed: frozenset[str] = frozenset()) -> list[str]:
    """aten operators with a kernel registered from outside torch (Python `torch.library`
    overrides, C++ `TORCH_LIBRARY_IMPL(aten, ...)` in an extension). ``allowed`` holds the
    locations present before the candidate was imported (torch's own build paths)."""
    names = ops if ops is not None else [n for n in torch._C._dispatch_get_all_op_names() if n.startswith("aten::")]
    out = []
    for name in names:
        try:
            dump = torch._C._dispatch_dump(name)
        except RuntimeError:
            continue
        bad = [loc for loc in _registration_locations(dump) if loc not in allowed and not loc.startswith(_TORCH_DIR)]
        if bad:
            out.append(f"{name} ({bad[0]})")
    return out


def registration_baseline() -> frozenset[str]:
    """Every location a kernel of an aten operator was registered from, before the candidate ran."""
    locs: set[str] = set()
    for name in torch._C._dispatch_get_all_op_names():
        if name.startswith("aten::"):
            locs |= _registration_locations(torch._C._dispatch_dump(name))
    return frozenset(locs)


def active_hooks() -> list[str]:
    """Process-wide hooks that would run candidate code inside the harness's own calls."""
    hooks = []
    if torch._C._len_torch_function_stack():
        hooks.append("a torch function mode is active")
    if torch._C._len_torch_dispatch_stack():
        hooks.append("a torch dispatch mode is active")
    if sys.gettrace() is not None:
        hooks.append("sys.settrace hook")
    if sys.getprofile() is not None:
        hooks.append("sys.setprofile hook")
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None:
        for tool in range(6):
            if monitoring.get_tool(tool) is not None and tool != monitoring.DEBUGGER_ID:
                hooks.append(f"sys.monitoring tool {tool}")
    return hooks
