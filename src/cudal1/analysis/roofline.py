"""Roofline: how much work a task is, how fast a device can do it, and how close a candidate got.

Work of a task (`task_work`), from its reference ``Model.forward`` run on the ``meta`` device
(shapes only, no memory, so full sizes cost nothing; real CPU tensors when an operator lacks a
meta kernel):

- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` for matrix work (mm/addmm/bmm/
  convolution/attention: 2 per multiply-add), split into matmul and convolution; plus our own
  count of vector work FlopCounterMode ignores: one FLOP per output element of every pointwise
  operator (aten ops tagged ``pointwise``, data movement excluded) and a few per input element of
  reductions and normalizations (`REDUCTION_FLOPS`).
- Fewest bytes: every input tensor, every parameter and buffer, and every output, each moved
  once (``nbytes``): what any implementation must at least read and write.

Peaks of a device (`measure_peaks`), measured once and cached in ``~/.cache/cudal1/peaks.json``
under the device name and torch version: matrix-unit matmul throughput per dtype (bf16, fp16,
TF32), CUDA-core fp32 (a large fp32 matmul with TF32 off) and memory bandwidth (a large
device-to-device copy, read + write bytes). On CPU: fp32 matmul and memcpy.

The roofline time of a task is ``max(compute time at the dtype's peaks, bytes / bandwidth)``;
a candidate's fraction of the roofline is that time over its measured time (1.0 = as fast as
the hardware allows for the reference's work; above 1.0 only when it skipped work).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..tasks.contract import Task, exec_task_module

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
# FLOPs per input element of reductions and normalizations (aten overload packet names).
REDUCTION_FLOPS = {
    "sum": 1, "mean": 1, "amax": 1, "amin": 1, "max": 1, "min": 1, "argmax": 1, "argmin": 1, "prod": 1,
    "cumsum": 1, "cumprod": 1, "logsumexp": 3, "norm": 2, "linalg_vector_norm": 2, "var": 3, "std": 3,
    "var_mean": 3, "_softmax": 4, "_log_softmax": 4, "native_layer_norm": 5, "native_group_norm": 5,
    "native_batch_norm": 5, "_native_batch_norm_legit": 5, "_native_batch_norm_legit_no_training": 5,
    "_fused_rms_norm": 4, "nll_loss_forward": 1, "mse_loss": 3, "smooth_l1_loss": 4, "kl_div": 3,
    # pooling: one comparison or addition per input element
    "max_pool2d_with_indices": 1, "max_pool3d_with_indices": 1, "max_pool1d": 1, "max_pool2d": 1,
    "avg_pool2d": 1, "avg_pool3d": 1, "avg_pool1d": 1, "_adaptive_avg_pool2d": 1, "_adaptive_avg_pool3d": 1,
    "adaptive_max_pool2d": 1,
}
# Pointwise-tagged operators that move data rather than compute.
NOT_COMPUTE = {"clone", "copy", "_to_copy", "fill", "zero", "alias", "lift_fresh", "detach", "masked_fill"}
CONV_OPS = {"convolution", "_convolution", "conv2d", "conv1d", "conv3d", "cudnn_convolution", "convolution_backward"}


# --- work of a task -------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskWork:
    """FLOPs and fewest bytes of one task's reference forward."""

    task_id: str
    size: str
    matmul_flops: int
    conv_flops: int
    vector_flops: int
    input_bytes: int
    weight_bytes: int
    output_bytes: int
    dtype: str  # fp32 | fp16 | bf16 | fp64 (the dtype holding most of the bytes)
    method: str  # meta | cpu

    @property
    def flops(self) -> int:
        return self.matmul_flops + self.conv_flops + self.vector_flops

    @property
    def bytes(self) -> int:
        return self.input_bytes + self.weight_bytes + self.output_bytes

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: FLOPs per byte of the fewest bytes."""
        return self.flops / self.bytes if self.bytes else math.inf

    def to_json(self) -> dict:
        return {**asdict(self), "flops": self.flops, "bytes": self.bytes, "intensity": self.intensity}


class _VectorFlops:
    """A dispatch mode counting the vector FLOPs FlopCounterMode leaves out."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                counter.count(func, args, out)
                return out

        self.flops = 0
        self.mode = Mode()

    def count(self, func, args, out) -> None:
        import torch

        name = func.overloadpacket.__name__.rstrip("_")
        if name in REDUCTION_FLOPS:
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            if first is not None:
                self.flops += REDUCTION_FLOPS[name] * first.numel()
        elif torch.Tag.pointwise in func.tags and name not in NOT_COMPUTE:
            outs = out if isinstance(out, (tuple, list)) else (out,)
            self.flops += sum(o.numel() for o in outs if isinstance(o, torch.Tensor))


def _tensors(value) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


_DTYPE_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}


def task_work(task: Task) -> TaskWork:
    """FLOPs and fewest bytes of ``task``'s reference forward at its size (see the module doc)."""
    return _task_work_cached(task.id, task.source, task.size)


_WORK_CACHE: dict[tuple[str, str], TaskWork] = {}


def _task_work_cached(task_id: str, source: str, size: str) -> TaskWork:
    key = (source, size)
    if key not in _WORK_CACHE:
        try:
            _WORK_CACHE[key] = _measure_work(task_id, source, size, "meta")
        except (NotImplementedError, RuntimeError, TypeError, ValueError):
            _WORK_CACHE[key] = _measure_work(task_id, source, size, "cpu")
    return _WORK_CACHE[key]


def _measure_work(task_id: str, source: str, size: str, device: str) -> TaskWork:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    module = exec_task_module(source, size)
    torch.manual_seed(0)
    with torch.device(device):
        model = module.Model(*module.get_init_inputs())
        inputs = module.get_inputs()
    vector = _VectorFlops()
    with torch.no_grad(), FlopCounterMode(display=False) as fc, vector.mode:
        out = model(*inputs)
    counts = fc.get_flop_counts().get("Global", {})
    conv = sum(v for op, v in counts.items() if getattr(op, "__name__", str(op)).split(".")[-1] in CONV_OPS)
    weights = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    ins, outs = _tensors(inputs), _tensors(out)
    everything = ins + list(weights.values()) + outs
    by_dtype: dict[str, int] = {}
    for t in everything:
        if t.is_floating_point():
            name = _DTYPE_NAMES.get(str(t.dtype).replace("torch.", ""), "fp32")
            by_dtype[name] = by_dtype.get(name, 0) + t.nbytes
    return TaskWork(
        task_id=task_id, size=size,
        matmul_flops=int(fc.get_total_flops() - conv), conv_flops=int(conv), vector_flops=int(vector.flops),
        input_bytes=sum(t.nbytes for t in ins), weight_bytes=sum(t.nbytes for t in weights.values()),
        output_bytes=sum(t.nbytes for t in outs),
        dtype=max(by_dtype, key=by_dtype.get) if by_dtype else "fp32", method=device,
    )


# --- peaks of a device ----------------------------------------------------------------------
@dataclass(frozen=True)
class Peaks:
    """Measured peaks of one device: FLOP/s per precision and bytes/s of memory."""

    device_name: str
    torch: str
    flops: dict  # precision -> FLOP/s ("fp32" = CUDA cores / CPU; "tf32", "bf16", "fp16" = matrix units)
    bandwidth: float  # bytes/s
    measured_at: float = 0.0
    method: dict = field(default_factory=dict)

    def matrix_peak(self, precision: str) -> float:
        """Peak for matrix work in ``precision``; fp32 when that precision was not measured."""
        return float(self.flops.get(precision) or self.flops["fp32"])

    @property
    def vector_peak(self) -> float:
        return float(self.flops["fp32"])

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "Peaks":
        return cls(**{k: d[k] for k in ("device_name", "torch", "flops", "bandwidth") },
                   measured_at=d.get("measured_at", 0.0), method=d.get("method", {}))


def peaks_cache_path() -> Path:
    """``$CUDAL1_CACHE/peaks.json``, else ``~/.cache/cudal1/peaks.json``."""
    base = os.environ.get("CUDAL1_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "cudal1") / "peaks.json"


def peaks_key(device_name: str, torch_version: str) -> str:
    return f"{device_name} | torch {torch_version}"


def load_cached_peaks(device: str, cache_path: Path | None = None) -> Peaks | None:
    import torch

    from ..judge.device import device_name

    path = cache_path or peaks_cache_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    entry = data.get(peaks_key(device_name(device), torch.__version__))
    return Peaks.from_json(entry) if entry else None


def save_peaks(peaks: Peaks, cache_path: Path | None = None) -> Path:
    path = cache_path or peaks_cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[peaks_key(peaks.device_name, peaks.torch)] = peaks.to_json()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def get_peaks(device: str, measure: bool = False, cache_path: Path | None = None, quick: bool = False) -> Peaks:
    """The device's peaks: from the cache, or measured (and cached) when missing or ``measure``."""
    if not measure:
        cached = load_cached_peaks(device, cache_path)
        if cached is not None:
            return cached
    peaks = measure_peaks(device, quick=quick)
    save_peaks(peaks, cache_path)
    return peaks


def _best_seconds(fn, device: str, reps: int) -> float:
    """The fastest of ``reps`` timed calls after two warm-ups (peaks are best cases)."""
    import torch

    fn()
    fn()
    best = math.inf
    for _ in range(reps):
        if device.startswith("cuda"):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            best = min(best, start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
    return best


def measure_peaks(device: str = "cuda", quick: bool = False) -> Peaks:
    """Measure matmul throughput per precision and copy bandwidth on ``device`` (see module doc).

    GPU: 8192^3 matmuls (4096 with ``quick``) and a 1 GiB copy. CPU: a 1024^3 fp32 matmul (384
    with ``quick``) and a 64 MiB copy (16 MiB with ``quick``). Global TF32 switches are restored.
    """
    import torch

    from ..judge.device import device_name

    cuda = device.startswith("cuda")
    n = (4096 if quick else 8192) if cuda else (384 if quick else 1024)
    reps = 5 if quick else 20
    flops, method = {}, {}
    precisions = PRECISIONS if cuda else ("fp32",)
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    try:
        for p in precisions:
            dtype = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[p]
            torch.backends.cuda.matmul.allow_tf32 = p == "tf32"
            torch.set_float32_matmul_precision("high" if p == "tf32" else "highest")
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)
            out = torch.empty(n, n, device=device, dtype=dtype)
            s = _best_seconds(lambda: torch.matmul(a, b, out=out), device, reps)
            flops[p] = 2.0 * n**3 / s
            method[p] = f"{n}x{n}x{n} {dtype} matmul" + (" (TF32 on)" if p == "tf32" else " (TF32 off)" if p == "fp32" else "")
            del a, b, out
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved[0]
        torch.set_float32_matmul_precision(saved[1])
    nbytes = (1 << 30) if cuda and not quick else (256 << 20) if cuda else (16 << 20) if quick else (64 << 20)
    src = torch.empty(nbytes // 4, device=device, dtype=torch.float32).fill_(1.0)
    dst = torch.empty_like(src)
    s = _best_seconds(lambda: dst.copy_(src), device, reps)
    method["bandwidth"] = f"copy of {nbytes >> 20} MiB, read + write bytes"
    return Peaks(device_name=device_name(device), torch=torch.__version__, flops=flops,
                 bandwidth=2.0 * nbytes / s, measured_at=time.time(), method=method)


# --- a candidate against the roofline --------------------------------------------------------
def roofline_ms(work: TaskWork, peaks: Peaks, precision: str | None = None) -> float:
    """The least time the hardware allows for the task's work (ms).

    ``precision`` is the matrix-unit precision the work may use; default: the task's dtype, where
    fp32 matmuls run on CUDA cores (PyTorch's default, TF32 off) and fp32 convolutions on TF32
    (cuDNN's default, ``torch.backends.cudnn.allow_tf32``). Pass "tf32"/"bf16"/"fp16" for a
    lower-precision candidate.
    """
    p = precision or work.dtype
    conv_p = precision or ("tf32" if work.dtype == "fp32" else work.dtype)
    compute_s = (work.matmul_flops / peaks.matrix_peak(p) + work.conv_flops / peaks.matrix_peak(conv_p)
                 + work.vector_flops / peaks.vector_peak)
    memory_s = work.bytes / peaks.bandwidth
    return max(compute_s, memory_s) * 1e3


def roofline_fraction(work: TaskWork, candidate_ms: float | None, peaks: Peaks, precision: str | None = None) -> float | None:
    """Roofline time over measured time (1.0 = at the roofline). None without a time."""
    if not candidate_ms or candidate_ms <= 0:
        return None
    return roofline_ms(work, peaks, precision) / candidate_ms


def bound_by(work: TaskWork, peaks: Peaks, precision: str | None = None) -> str:
    """``compute`` or ``memory``: which roof limits the task."""
    p = precision or work.dtype
    compute_s = (work.matmul_flops / peaks.matrix_peak(p) + work.conv_flops / peaks.matrix_peak(
        precision or ("tf32" if work.dtype == "fp32" else work.dtype)) + work.vector_flops / peaks.vector_peak)
    return "compute" if compute_s >= work.bytes / peaks.bandwidth else "memory"


def percent_of_roofline(task: Task, candidate_ms: float | None, peaks: Peaks | None,
                        precision: str | None = None) -> str:
    """The "% of roofline" cell for bench tables and reports: ``"37%"``, or ``"-"`` when unknown."""
    if peaks is None or not candidate_ms:
        return "-"
    try:
        frac = roofline_fraction(task_work(task), candidate_ms, peaks, precision)
    except Exception:  # noqa: BLE001 - a task whose work cannot be counted gets no cell, not a crash
        return "-"
    return "-" if frac is None else f"{100 * frac:.0f}%" if frac >= 0.1 else f"{100 * frac:.1f}%"


@dataclass(frozen=True)
class RooflinePoint:
    """One program on the chart: its arithmetic intensity and achieved FLOP/s."""

    label: str
    intensity: float
    achieved_flops: float
    fraction: float | None = None


def roofline_point(label: str, work: TaskWork, ms: float, peaks: Peaks | None = None,
                   precision: str | None = None) -> RooflinePoint:
    frac = roofline_fraction(work, ms, peaks, precision) if peaks else None
    return RooflinePoint(label, work.intensity, work.flops / (ms / 1e3), frac)


def plot_roofline(points: list[RooflinePoint], peaks: Peaks, path: str | Path, title: str | None = None) -> Path:
    """A log-log roofline chart (arithmetic intensity vs achieved FLOP/s) with one roof per
    measured precision and the bandwidth slope; saved as PNG/SVG by ``path``'s suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    drawable = [p for p in points if p.intensity > 0 and math.isfinite(p.intensity) and p.achieved_flops > 0]
    lo = min([p.intensity for p in drawable] + [0.05]) / 2
    hi = max([p.intensity for p in drawable] + [max(peaks.flops.values()) / peaks.bandwidth * 4]) * 2
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    styles = {"fp32": "-", "tf32": "--", "bf16": "-.", "fp16": ":"}
    for prec, peak in sorted(peaks.flops.items(), key=lambda kv: kv[1]):
        ax.plot(xs, [min(peak, peaks.bandwidth * x) for x in xs], styles.get(prec, "-"), color="0.3",
                label=f"{prec} roof {peak / 1e12:.1f} TFLOP/s")
    ax.plot([], [], " ", label=f"memory {peaks.bandwidth / 1e9:.0f} GB/s")
    if drawable:
        ax.scatter([p.intensity for p in drawable], [p.achieved_flops for p in drawable], s=28, zorder=3, color="C1")
        if len(drawable) <= 40:
            for p in drawable:
                ax.annotate(p.label, (p.intensity, p.achieved_flops), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte, fewest bytes)")
    ax.set_ylabel("achieved FLOP/s")
    ax.set_title(title or f"Roofline: {peaks.device_name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --- for bench tables and the HTML report -----------------------------------------------------
def peaks_for_device_name(name: str, cache_path: Path | None = None) -> Peaks | None:
    """Cached peaks of a device by its name (as verdicts record it): this torch version's entry,
    else the most recently measured one for that name."""
    import torch

    path = cache_path or peaks_cache_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    entry = data.get(peaks_key(name, torch.__version__))
    if entry is None:
        same = [e for e in data.values() if e.get("device_name") == name]
        entry = max(same, key=lambda e: e.get("measured_at", 0.0), default=None)
    return Peaks.from_json(entry) if entry else None


def bench_roofline(result, cache_path: Path | None = None) -> dict[str, str]:
    """``{task_id: "% of roofline" cell}`` for a `bench.runner.BenchResult`'s accepted candidates;
    empty when the run's device has no cached peaks (``cudal1 roofline --measure-peaks``)."""
    peaks = peaks_for_device_name(result.device_name, cache_path)
    if peaks is None:
        return {}
    cells = {}
    for r in result.results:
        task = result.tasks.get(r.task_id)
        if task is not None and r.verdict is not None and r.verdict.accepted:
            cells[r.task_id] = percent_of_roofline(task, r.verdict.candidate_ms, peaks)
    return cells


def bench_roofline_chart(result, path: str | Path, cache_path: Path | None = None) -> Path | None:
    """The roofline chart of a bench run's accepted candidates (None without cached peaks). A run
    without accepted candidates (baselines only) charts each task's fastest accepted baseline,
    labelled with its name, rather than bare roofs."""
    peaks = peaks_for_device_name(result.device_name, cache_path)
    if peaks is None:
        return None
    points = []
    for r, label, v in chart_entries(result):
        task = result.tasks.get(r.task_id)
        if task is not None:
            try:
                points.append(roofline_point(label, task_work(task), v.candidate_ms, peaks))
            except Exception:  # noqa: BLE001 - a task whose work cannot be counted is left off the chart
                continue
    return plot_roofline(points, peaks, path, title=f"Roofline of run {result.run_id}: {peaks.device_name}")


def _timed_candidates(result) -> list:
    return [r for r in result.results if r.verdict is not None and r.verdict.accepted and r.verdict.candidate_ms]


def charts_baselines(result) -> bool:
    """Whether the run's roofline chart shows baselines: it has no accepted, timed candidate."""
    return not _timed_candidates(result)


def chart_entries(result) -> list[tuple]:
    """(task result, label, verdict) for each point of a bench run's roofline chart: its accepted
    candidates, or without any, each task's fastest accepted baseline."""
    timed = [(r, r.task_id.split("/")[-1][:24], r.verdict) for r in _timed_candidates(result)]
    if not timed:
        for r in result.results:
            ok = [(kind, v) for kind, v in r.baselines.items() if v.accepted and v.candidate_ms]
            if ok:
                kind, v = min(ok, key=lambda kv: kv[1].candidate_ms)
                timed.append((r, f"{r.task_id.split('/')[-1][:18]} [{kind}]", v))
    return timed
