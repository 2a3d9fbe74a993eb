"""Cost model: plans the roofline says cannot beat the reference are not judged.

Every plan without ``simplify`` keeps the reference's work: the same FLOPs over the same
inputs, parameters and outputs. Fusion, graph replay, compilers and memory formats change how
that work runs, not how much of it there is, and the roofline's byte count (each input,
parameter and output moved once) already assumes perfect fusion. So the roofline time of the
reference's work (`analysis.roofline.roofline_ms`, at the plan's precision: TF32 for ``tf32``,
bf16 for ``autocast-bf16``) bounds every candidate of such a plan from below, and its speedup
from above by ``reference_ms / roofline_ms``. A plan whose bound is under ``MIN_GAIN`` is
skipped: none of its candidates could be judged meaningfully faster. ``simplify`` removes
work, so no bound applies to plans that use it.

A plan with ``cudagraph`` also pays for its wrapper: each replay copies the inputs into the
graph's static buffers and clones the outputs out of its pool, kernels on the same stream as
the forward, so its time is at least the roofline time plus moving the input and output bytes
twice more (read and write each). That bounds ``simplify`` plans with a graph as well, and rules
out graph replay of large memory-bound tasks (on an H200 a fused softmax in a graph ran at 0.21x).

``MIN_GAIN`` is 1.10 rather than 1.0 because the peaks are measurements (a large copy's
bandwidth, a large matmul's throughput) that the best kernels can exceed by a few percent.

The reference's time is the judge's: the median ``ref_ms`` of the task's verdicts on this
device at this size. Before the first verdict nothing is skipped.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

from ...analysis.roofline import Peaks, TaskWork, roofline_ms

MIN_GAIN = 1.10
PRECISION = {"tf32": "tf32", "autocast-bf16": "bf16"}  # components that change the work's precision


@dataclass(frozen=True)
class Skipped:
    plan: str
    at_most: float  # the highest speedup the roofline allows the plan

    def reason(self) -> str:
        return (f"{self.plan}: at most {self.at_most:.2f}x (the reference already runs at "
                f"{min(100.0, 100.0 / self.at_most):.0f}% of the roofline of its work)")


def speedup_bound(components: tuple[str, ...], reference_ms: float, work: TaskWork, peaks: Peaks) -> float | None:
    """The most a plan of ``components`` can gain over a reference taking ``reference_ms``;
    None when no bound applies (the plan removes work, or the roofline is zero)."""
    copies = graph_copies_ms(work, peaks) if "cudagraph" in components else 0.0
    if "simplify" in components:
        return reference_ms / copies if copies > 0 else None
    precision = next((PRECISION[c] for c in components if c in PRECISION), None)
    roof = roofline_ms(work, peaks, precision) + copies
    return reference_ms / roof if roof > 0 else None


def graph_copies_ms(work: TaskWork, peaks: Peaks) -> float:
    """The least time of a graph wrapper's copies: every input into its static buffer and every
    output cloned out, each read once and written once."""
    moved = replace(work, matmul_flops=0, conv_flops=0, vector_flops=0, weight_bytes=0,
                    input_bytes=2 * work.input_bytes, output_bytes=2 * work.output_bytes)
    return roofline_ms(moved, peaks)


def skipped(components: tuple[str, ...], reference_ms: float | None, work: TaskWork | None,
            peaks: Peaks | None) -> Skipped | None:
    """A `Skipped` when the model rules the plan out, else None (also when it lacks a figure)."""
    if not reference_ms or work is None or peaks is None:
        return None
    bound = speedup_bound(components, reference_ms, work, peaks)
    if bound is None or bound >= MIN_GAIN:
        return None
    return Skipped("+".join(components), bound)


def reference_ms(verdicts) -> float | None:
    """The median reference time of ``verdicts`` (the task's, on one device and size) that have one."""
    times = [v.ref_ms for v in verdicts if getattr(v, "ref_ms", None)]
    return statistics.median(times) if times else None
