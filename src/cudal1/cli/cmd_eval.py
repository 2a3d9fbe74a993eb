"""``cudal1 eval REFERENCE CANDIDATE``: judge one candidate file against its task."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from ..config_fields import add_flags, flag_values
from ..judge import JudgeConfig, Verdict
from .common import UsageError, add_device_flag, add_size_flag, add_suite_flag, console, device_or_usage_error, size_or_default, task_or_usage_error

# The JudgeConfig fields `cudal1 eval` sets from flags; each flag's name, type, help and default come
# from the field (atol and rtol share --tolerance).
JUDGE_FLAGS = ("trials", "atol", "rtol", "timed_calls", "rounds", "sandbox", "robustness_probe", "build_timeout_s",
               "run_timeout_s", "allow_lower_precision")

VERDICT_STYLE = {"accepted": "green", "incorrect": "red", "rejected": "red", "build_error": "yellow",
                 "runtime_error": "yellow", "timeout": "yellow"}


def register(sub) -> None:
    p = sub.add_parser("eval", help="judge one candidate (ModelNew) against a task: correctness, timing, hack checks",
                       description="Judge CANDIDATE.py against REFERENCE (a task file or a task id). Exit status: 0 accepted, "
                                   "1 any other verdict, 2 usage error.")
    p.add_argument("reference", metavar="REFERENCE", help="task file (KernelBench format) or task id, e.g. level1/1_Square_Matmul")
    p.add_argument("candidate", metavar="CANDIDATE.py", help="file defining class ModelNew(nn.Module)")
    add_device_flag(p)
    add_size_flag(p)
    add_suite_flag(p)
    p.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    add_flags(p.add_argument_group("judge settings (JudgeConfig)"), JudgeConfig, JUDGE_FLAGS)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..judge import evaluate

    cand = Path(args.candidate)
    if not cand.is_file():
        raise UsageError(f"{cand}: no such file (give the candidate's path)")
    try:
        source = cand.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{cand}: cannot be read ({e})") from None
    task = task_or_usage_error(args.reference, size=size_or_default(args, args.reference), suite=args.suite)
    device = device_or_usage_error(args.device)
    try:
        # One evaluation: its kernel list is worth the profiler's start-up whatever the source declares.
        config = JudgeConfig(**flag_values(args, JudgeConfig, JUDGE_FLAGS), profile_every_candidate=True)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not args.json:
        console.print(f"judging [bold]{cand}[/bold] against [bold]{task.id}[/bold] ({task.size}) on {device} ...")
    verdict = evaluate(task, source, device=device, config=config)
    if args.json:
        print(json.dumps(verdict.to_json()))
    else:
        render(verdict, task.id)
    return 0 if verdict.accepted else 1


def render(v: Verdict, task_id: str) -> None:
    style = VERDICT_STYLE.get(v.verdict, "white")
    t = Table(title=f"verdict for {task_id}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("verdict", f"[{style}]{v.verdict}[/{style}]")
    t.add_row("speedup", speedup_line(v))
    t.add_row("reference / candidate", f"{_ms(v.ref_ms)} / {_ms(v.candidate_ms)}")
    t.add_row("call-time CV (ref / cand)", f"{_pct(v.ref_cv)} / {_pct(v.candidate_cv)}")
    t.add_row("timing floor", floor_line(v))
    spread = v.details.candidate_spread or {}
    if spread.get("iqr_over_median") is not None:
        t.add_row("candidate spread", f"IQR/median {spread['iqr_over_median'] * 100:.1f}%")
    t.add_row("max abs error", f"{v.max_abs_error:.3g}" if v.max_abs_error is not None else "-")
    t.add_row("within 1e-4", "-" if v.details.strict_tol_ok is None else str(v.details.strict_tol_ok))
    t.add_row("device / torch", f"{v.device} / {v.torch}")
    t.add_row("sandbox", v.details.sandbox_applied or v.details.sandbox or "-")
    t.add_row("build / eval", f"{v.build_s or 0:.1f} s / {v.eval_s or 0:.1f} s")
    if v.details.remeasured:
        r = v.details.remeasured
        t.add_row("re-measured", f"{r['speedup']:.3f}x on {r['device']} (fresh processes)")
    console.print(t)
    if v.findings:
        f = Table(title="findings (cudal1 findings ID explains each)")
        for col in ("id", "severity", "message"):
            f.add_column(col)
        for x in v.findings:
            f.add_row(x.id, f"[{'red' if x.severity == 'reject' else 'yellow'}]{x.severity}[/]", x.message)
        console.print(f)
    if v.kernels:
        k = Table(title="GPU kernels the candidate launched")
        k.add_column("kernel")
        k.add_column("share", justify="right")
        for x in v.kernels[:10]:
            k.add_row(x.name[:90], f"{x.share * 100:.1f}%")
        console.print(k)
    if v.details.error:
        console.print(f"[yellow]error:[/yellow] {v.details.error[:2000]}")


def speedup_line(v: Verdict) -> str:
    """``2.31x [2.20-2.45]`` (95% interval) and what it means: faster, not significant, slower."""
    if v.speedup is None:
        return "-"
    ci = v.speedup_ci
    if ci is None:
        return f"{v.speedup_text()} [dim](no interval)[/dim]"
    if ci[0] > 1.0:
        note = "[green]faster beyond the noise[/green] (95% interval above 1.0)"
    elif ci[1] < 1.0:
        note = "[red]slower beyond the noise[/red] (95% interval below 1.0)"
    else:
        note = "[yellow]not significant[/yellow]: the 95% interval contains 1.0"
    return f"{v.speedup_text()} {note}"


def floor_line(v: Verdict) -> str:
    """The judge's floor (its time for an empty forward), with a warning when the candidate's
    time is under twice the floor: such a speedup measures the harness more than the kernel."""
    if v.floor_ms is None:
        return "-"
    text = f"{_ms(v.floor_ms)} (the judge's time for an empty forward)"
    if v.candidate_ms is not None and v.candidate_ms < 2 * v.floor_ms:
        text += "\n[yellow]the candidate's time is within 2x of the floor: its speedup is mostly timing overhead[/yellow]"
    return text


def _ms(x) -> str:
    return f"{x:.4f} ms" if x is not None else "-"


def _pct(x) -> str:
    return f"{100 * x:.1f}%" if x is not None else "-"


__all__ = ["register", "run", "render", "speedup_line", "floor_line"]
