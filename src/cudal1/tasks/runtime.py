"""Running a (trusted) reference program on a device: build it under a seed, time a callable.

This is for references only: in-process, no isolation. Candidates go through the judge.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from .contract import Task, exec_task_module


def _to_device(value, device: str):
    return value.to(device) if isinstance(value, torch.Tensor) else value


def instantiate(task: Task, device: str = "cpu", seed: int = 0) -> tuple[torch.nn.Module, list]:
    """Build ``Model(*get_init_inputs())`` and ``get_inputs()`` of ``task`` (at ``task.size``) on ``device``.

    The seed is set once before the model is built (so weights match KernelBench-style
    reference construction) and inputs are drawn on the CPU right after, so the values are
    the same whatever the device.
    """
    module = exec_task_module(task.source, size=task.size)
    torch.manual_seed(seed)
    init_inputs = module.get_init_inputs()
    model = module.Model(*init_inputs).to(device)
    inputs = [_to_device(v, device) for v in module.get_inputs()]
    return model, inputs


def forward_fn(model: torch.nn.Module, inputs: list) -> Callable[[], object]:
    """A no-argument callable running ``model(*inputs)`` without autograd (what gets timed)."""

    def run():
        with torch.no_grad():
            return model(*inputs)

    return run


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def time_callable(
    fn: Callable[[], object],
    device: str = "cpu",
    iters: int = 20,
    warmup: int = 3,
    between: Callable[[], object] | None = None,
) -> list[float]:
    """Milliseconds of ``iters`` calls of ``fn`` after ``warmup`` untimed ones.

    On CUDA each call is bracketed by events on the current stream and the whole device is
    synchronized before the end event is read (work left on other streams is counted). On the
    CPU, ``time.perf_counter``. ``between`` runs before every timed call, outside the timing
    (e.g. an L2 flush).
    """
    if iters < 1:
        raise ValueError("iters must be at least 1")
    for _ in range(warmup):
        fn()
    _synchronize(device)
    times: list[float] = []
    cuda = device.startswith("cuda")
    for _ in range(iters):
        if between is not None:
            between()
        if cuda:
            torch.cuda.synchronize(torch.device(device))
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            torch.cuda.synchronize(torch.device(device))
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """Disable TF32 in matmuls and convolutions for the duration (restored afterwards)."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def describe_value(value) -> str:
    """``float32[64, 128]`` for a tensor, ``repr`` for small other values."""
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).replace('torch.', '')}{list(value.shape)}"
    text = repr(value)
    return text if len(text) < 40 else type(value).__name__


def flatten_outputs(out) -> list:
    """The tensors (and other leaves) of a forward's result, in order."""
    if isinstance(out, (list, tuple)):
        return [leaf for item in out for leaf in flatten_outputs(item)]
    return [out]


@dataclass(frozen=True)
class ReferenceTiming:
    """One reference run: what it returned and how long it took."""

    task_id: str
    size: str
    device: str
    outputs: tuple[str, ...]
    times_ms: tuple[float, ...]
    finite: bool

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def min_ms(self) -> float:
        return min(self.times_ms)

    def to_json(self) -> dict:
        return {
            "task": self.task_id, "size": self.size, "device": self.device, "outputs": list(self.outputs),
            "times_ms": list(self.times_ms), "median_ms": self.median_ms, "min_ms": self.min_ms, "finite": self.finite,
        }


def time_reference(task: Task, device: str = "cpu", iters: int = 20, warmup: int = 3, seed: int = 0) -> ReferenceTiming:
    """Build ``task``'s reference on ``device`` and time it in full fp32 (no TF32)."""
    with strict_fp32():
        model, inputs = instantiate(task, device, seed)
        run = forward_fn(model, inputs)
        leaves = flatten_outputs(run())
        times = time_callable(run, device, iters=iters, warmup=warmup)
    finite = all(torch.isfinite(v).all().item() for v in leaves if isinstance(v, torch.Tensor) and v.is_floating_point())
    return ReferenceTiming(
        task_id=task.id, size=task.size, device=device, outputs=tuple(describe_value(v) for v in leaves),
        times_ms=tuple(times), finite=finite,
    )
