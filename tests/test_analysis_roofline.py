"""Roofline: FLOPs and bytes checked by hand; CPU peaks measured, cached and reloaded; the chart."""

from __future__ import annotations

import json

import pytest

from cudal1.analysis.roofline import (
    Peaks, get_peaks, load_cached_peaks, percent_of_roofline, plot_roofline, roofline_fraction,
    roofline_ms, roofline_point, task_work,
)
from cudal1.tasks import resolve_task


def test_matmul_by_hand():
    w = task_work(resolve_task("level1/1_Square_Matmul", size="smoke"))  # N = 128
    n = 128
    assert (w.matmul_flops, w.conv_flops, w.vector_flops) == (2 * n**3, 0, 0)
    assert (w.input_bytes, w.weight_bytes, w.output_bytes) == (2 * n * n * 4, 0, n * n * 4)
    assert w.dtype == "fp32" and w.method == "meta"


def test_convolution_by_hand():
    w = task_work(resolve_task("level1/7_Conv2d_Standard", size="smoke"))
    b, cin, cout, h, wd, k = 2, 4, 8, 20, 24, 3  # the task's SMOKE sizes, padding k // 2
    assert w.conv_flops == 2 * b * cout * h * wd * cin * k * k
    assert w.matmul_flops == 0
    assert w.input_bytes == b * cin * h * wd * 4
    assert w.weight_bytes == (cout * cin * k * k + cout) * 4
    assert w.output_bytes == b * cout * h * wd * 4


def test_elementwise_by_hand():
    w = task_work(resolve_task("level1/18_GELU", size="smoke"))  # 128 x 256
    n = 128 * 256
    assert (w.flops, w.vector_flops) == (n, n)
    assert w.bytes == 2 * n * 4
    assert w.intensity == pytest.approx(1 / 8)


def test_full_size_is_counted_on_meta_without_memory():
    w = task_work(resolve_task("level1/1_Square_Matmul"))
    assert w.matmul_flops == 2 * 4096**3 and w.method == "meta"


PEAKS = Peaks("Test GPU", "2.x", {"fp32": 50e12, "tf32": 400e12, "bf16": 800e12}, 3e12)


def test_roofline_time_and_fraction():
    mm = task_work(resolve_task("level1/1_Square_Matmul"))
    # fp32 matmul is compute bound on CUDA cores: 2*4096^3 / 50e12 s
    assert roofline_ms(mm, PEAKS) == pytest.approx(2 * 4096**3 / 50e12 * 1e3)
    assert roofline_ms(mm, PEAKS, precision="bf16") == pytest.approx(2 * 4096**3 / 800e12 * 1e3)
    gelu = task_work(resolve_task("level1/18_GELU"))
    t = roofline_ms(gelu, PEAKS)
    assert t == pytest.approx(gelu.bytes / 3e12 * 1e3)  # memory bound
    assert roofline_fraction(gelu, 2 * t, PEAKS) == pytest.approx(0.5)
    assert roofline_fraction(gelu, None, PEAKS) is None
    assert percent_of_roofline(resolve_task("level1/18_GELU"), 2 * t, PEAKS) == "50%"
    assert percent_of_roofline(resolve_task("level1/18_GELU"), 2 * t, None) == "-"
    conv = task_work(resolve_task("level1/7_Conv2d_Standard"))
    assert roofline_ms(conv, PEAKS) == pytest.approx(max(conv.conv_flops / 400e12, conv.bytes / 3e12) * 1e3)


def test_cpu_peaks_measured_cached_and_reloaded(tmp_path):
    cache = tmp_path / "peaks.json"
    p = get_peaks("cpu", cache_path=cache, quick=True)
    assert p.flops["fp32"] > 1e8 and p.bandwidth > 1e8
    data = json.loads(cache.read_text())
    (key,) = data
    assert key.endswith(f"torch {p.torch}") and p.device_name in key
    again = load_cached_peaks("cpu", cache)
    assert again == p
    assert get_peaks("cpu", cache_path=cache) == p  # from the cache, not measured again


def test_chart(tmp_path):
    task = resolve_task("level1/18_GELU")
    work = task_work(task)
    pts = [roofline_point("gelu", work, roofline_ms(work, PEAKS) * 3, PEAKS),
           roofline_point("mm", task_work(resolve_task("level1/1_Square_Matmul")), 10.0, PEAKS)]
    assert pts[0].fraction == pytest.approx(1 / 3)
    out = plot_roofline(pts, PEAKS, tmp_path / "roof.png")
    assert out.stat().st_size > 10_000


def test_bench_column_and_report(tmp_path):
    """The "% of roofline" fractions and chart for a bench run, and the report's column."""
    from cudal1.analysis.roofline import bench_roofline, bench_roofline_chart, save_peaks
    from cudal1.bench.runner import BenchResult
    from cudal1.bench.stats import TaskResult
    from cudal1.judge.verdict import Verdict
    from cudal1.report.data import roofline_fractions
    from cudal1.report.html import render_html
    from cudal1.report.tables import task_table

    cache = tmp_path / "peaks.json"
    save_peaks(PEAKS, cache)
    task = resolve_task("level1/18_GELU")
    t = roofline_ms(task_work(task), PEAKS)
    v = Verdict("accepted", True, 1.5, 3 * t, 2 * t, 0.0, (), "Test GPU", "2.x")
    result = BenchResult(run_id=1, device_name="Test GPU", baselines=("eager",),
                         results=[TaskResult(task.id, 1, v, {"eager": v})], tasks={task.id: task})
    assert bench_roofline(result, cache) == {task.id: "50%"}
    fractions = roofline_fractions(result, cache)
    assert fractions == {task.id: pytest.approx(0.5)}
    assert roofline_fractions(BenchResult(2, "Other GPU", ("eager",), result.results, result.tasks), cache) is None
    assert bench_roofline_chart(result, tmp_path / "r.png", cache).stat().st_size > 10_000
    assert "%roof" in [c.header for c in task_table(result, roofline=fractions).columns]
    html = render_html(result, roofline=fractions)
    assert "% of roofline" in html and "<td>50%</td>" in html


def test_cli_help_renders():
    from cudal1.cli.main import build_parser

    parser = build_parser()
    assert "roofline" in parser.format_help()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("explain", "techniques", "roofline"):
        assert sub.choices[name].format_help()


@pytest.mark.cuda
def test_gpu_peaks_are_ordered():
    from cudal1.analysis.roofline import measure_peaks

    p = measure_peaks("cuda", quick=True)
    assert set(p.flops) == {"fp32", "tf32", "bf16", "fp16"}
    assert p.flops["bf16"] > p.flops["tf32"] > p.flops["fp32"] > 1e12
    assert p.bandwidth > 1e11


@pytest.mark.cuda
def test_gpu_run_evidence_of_a_custom_kernel():
    """The judge's kernel list on a GPU confirms the source evidence (origin source+run)."""
    from pathlib import Path

    from cudal1.analysis.tags import find_tags
    from cudal1.judge import JudgeConfig, evaluate

    task = resolve_task("level1/18_GELU", size="smoke")
    src = (Path(__file__).parent / "analysis_candidates" / "custom_cuda_kernel.py").read_text()
    v = evaluate(task, src, "cuda", JudgeConfig.quick())
    assert v.accepted, v.to_json()
    hits = {h.id: h for h in find_tags(task, src, v)}
    assert hits["custom-cuda-kernel"].origin == "source+run"


def test_baselines_only_run_charts_each_tasks_fastest_baseline():
    """A bench of baselines alone (no candidate accepted) still puts its tasks on the chart."""
    from cudal1.analysis.roofline import chart_entries, charts_baselines
    from cudal1.bench.runner import BenchResult
    from cudal1.bench.stats import TaskResult
    from cudal1.judge.verdict import Verdict

    task = resolve_task("level1/18_GELU")
    eager = Verdict("accepted", True, 1.0, 2.0, 2.0, 0.0, (), "Test GPU", "2.x")
    graph = Verdict("accepted", True, 1.6, 2.0, 1.25, 0.0, (), "Test GPU", "2.x")
    broken = Verdict("runtime_error", False, None, 2.0, None, 0.0, (), "Test GPU", "2.x")
    result = BenchResult(run_id=1, device_name="Test GPU", baselines=("eager", "cuda-graph", "compile"),
                         results=[TaskResult(task.id, 1, None, {"eager": eager, "cuda-graph": graph, "compile": broken})],
                         tasks={task.id: task})
    [(r, label, v)] = chart_entries(result)
    assert label.endswith("[cuda-graph]") and v is graph and charts_baselines(result)
    with_candidate = BenchResult(1, "Test GPU", ("eager",), [TaskResult(task.id, 1, graph, {"eager": eager})], {task.id: task})
    assert [label for _, label, _ in chart_entries(with_candidate)] == ["18_GELU"] and not charts_baselines(with_candidate)
