"""What a candidate must not change: timers, RNG/input functions, backend state, threads.

Captured in the worker before the candidate is imported, compared after import and after
timing. The timing code itself only uses the captured originals.
"""

from __future__ import annotations

import os
import threading
import time

import torch

TIMING_NAMES = (
    "time.perf_counter", "time.perf_counter_ns", "time.time", "time.monotonic", "time.monotonic_ns",
    "torch.cuda.synchronize", "torch.cuda.Event", "torch.cuda.Event.record", "torch.cuda.Event.elapsed_time",
    "torch.cuda.Event.synchronize", "torch.cuda.current_stream", "torch.cuda.Stream.synchronize",
)
INPUT_NAMES = (
    "torch.manual_seed", "torch.randn", "torch.rand", "torch.randint", "torch.randn_like", "torch.rand_like",
    "torch.empty", "torch.zeros", "torch.ones", "torch.tensor", "torch.Tensor.to", "torch.Tensor.clone",
    "torch.Tensor.cuda", "torch.Tensor.__init__", "torch.Tensor.__new__", "torch.nn.Module.__call__", "torch.nn.Module.to",
    "torch.equal", "torch.save",
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
