"""``cudal1 optimize``: find a faster, judge-accepted ModelNew for one task (LLM-free or LLM)."""

from __future__ import annotations

import argparse
import json


from ..config_fields import add_flags, flag_values
from ..report.fit import FitTable
from ..search.options import LLMOptions, SearchOptions

from .common import (
    UsageError,
    add_device_flag,
    add_size_flag,
    add_suite_flag,
    console,
    err_console,
    size_or_default,
    task_or_usage_error,
)


# The SearchOptions / LLMOptions fields `cudal1 optimize` sets from flags; each flag's name, type,
# help and default come from the field. Flags left out keep the dataclass defaults.
SEARCH_FLAGS = ("budget", "out_dir", "db", "allow_lower_precision", "wall_time_s")
LLM_SEARCH_FLAGS = ("rounds", "samples", "exemplars", "exemplar_selection")
LLM_FLAGS = ("base_url", "model", "token_budget")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "optimize",
        help="search for a faster ModelNew for one task; writes the best judge-accepted candidate and a report",
        description="Propose candidates (LLM-free rules, or an LLM), judge each, store everything, and write "
        "the fastest ACCEPTED candidate as out/best_<task>.py plus out/report.json.",
    )
    p.add_argument("task", metavar="TASK_ID|FILE", help="a task id (level1/1_Square_Matmul, or a unique prefix) or a task file")
    p.add_argument("--policy", choices=["rules", "llm"], default="rules", help="rules (LLM-free, default) or llm")
    add_device_flag(p)
    add_size_flag(p)
    add_suite_flag(p)
    p.add_argument("--quick", action="store_true", help="fewer judge trials and timed calls (CPU smoke runs)")
    add_flags(p, SearchOptions, SEARCH_FLAGS)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    llm = p.add_argument_group("LLM policy (--policy llm)")
    add_flags(llm, SearchOptions, LLM_SEARCH_FLAGS)
    add_flags(llm, LLMOptions, LLM_FLAGS)
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace):
    """The `SearchOptions` the flags describe (flags left out keep the dataclass defaults)."""
    try:
        return SearchOptions(device=args.device, size=size_or_default(args, args.task),
                             llm=LLMOptions(**flag_values(args, LLMOptions, LLM_FLAGS)),
                             **flag_values(args, SearchOptions, SEARCH_FLAGS + LLM_SEARCH_FLAGS))
    except ValueError as e:
        raise UsageError(str(e)) from None


def run(args: argparse.Namespace) -> int:
    from ..judge.config import JudgeConfig
    from .common import device_or_usage_error

    options = options_from_args(args)
    device_or_usage_error(options.device)
    task = task_or_usage_error(args.task, size=options.size, suite=args.suite)
    config = (JudgeConfig.quick if args.quick else JudgeConfig)(allow_lower_precision=options.allow_lower_precision)

    with err_console.status(f"[bold]optimizing {task.id}[/bold] ({options.size})") as status:
        def progress(msg: str) -> None:
            status.update(f"[bold]{task.id}[/bold]: {msg}")
            if "judging" not in msg and "proposing" not in msg:
                err_console.print(f"  {msg}")

        if args.policy == "llm":
            from ..search.llm_loop import run_llm_search  # lazy: pulls the LLM extras

            from ..policies.llm.backends import LLMUnavailable

            try:
                result = run_llm_search(task, options, judge_config=config, progress=progress)
            except LLMUnavailable as e:
                raise UsageError(str(e)) from None
        else:
            from ..policies.rules import RulesPolicy
            from ..search.optimize import optimize

            result = optimize(task, RulesPolicy(), options, judge_config=config, progress=progress)
    if args.json:
        console.print_json(json.dumps(result.to_json(), default=str))
    else:
        render(result)
    return 0 if result.beats_reference else 1


def _fmt(x, spec=".3g", suffix=""):
    return "-" if x is None else f"{x:{spec}}{suffix}"


def render(result) -> None:
    if not result.tried:
        console.print(f"[bold yellow]{result.message()}[/]")
        console.print(f"report: {result.report_path}")
        return
    table = FitTable(title=f"{result.task.id} ({result.task.size}) on {result.device_name}", title_justify="left",
                     optional=("max err", "ref ms", "cand ms"))
    right = {"justify": "right", "no_wrap": True}
    for col, kw in (("#", right), ("strategy", {}), ("verdict", {"no_wrap": True}), ("speedup [95%]", right),
                    ("ref ms", right), ("cand ms", right), ("max err", right), ("findings", {})):
        table.add_column(col, **kw)
    best = result.best
    for i, t in enumerate(result.tried, 1):
        v = t.verdict
        style = "green" if t.faster else ("" if v.accepted else "red")
        verdict = f"[{style}]{v.verdict}[/{style}]" if style else v.verdict
        findings = ", ".join(dict.fromkeys(f.id + ("!" if f.severity == "reject" else "") for f in v.findings))
        name = t.strategy + (" [yellow](lower precision)[/yellow]" if t.is_lower_precision else "") + (" [dim](stored)[/dim]" if t.reused else "")
        mark = " ★" if best is not None and t is best and result.beats_reference else ""
        speed = v.speedup_text() or "-"
        table.add_row(str(i), name + mark, verdict, speed if t.faster or not v.speedup else f"[dim]{speed}[/dim]", _fmt(v.ref_ms, ".4g"),
                      _fmt(v.candidate_ms, ".4g"), _fmt(v.max_abs_error, ".2g"), findings or "-")
    console.print(table)
    console.print(("[bold green]" if result.beats_reference else "[bold yellow]") + result.message() + "[/]")
    if result.best_path:
        console.print(f"best candidate: {result.best_path}")
    if result.best_lower_precision_path:
        console.print(f"best lower-precision candidate (separate): {result.best_lower_precision_path}")
    console.print(f"report: {result.report_path}" + (f"  (run {result.run_id})" if result.run_id is not None else ""))
