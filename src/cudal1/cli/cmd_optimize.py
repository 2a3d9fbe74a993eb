"""``cudal1 optimize``: find a faster, judge-accepted ModelNew for one task (LLM-free or LLM)."""

from __future__ import annotations

import argparse
import json


from ..report.fit import FitTable

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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "optimize",
        help="search for a faster ModelNew for one task; writes the best judge-accepted candidate and a report",
        description="Propose candidates (LLM-free rules, or an LLM), judge each, store everything, and write "
        "the fastest ACCEPTED candidate as out/best_<task>.py plus out/report.json.",
    )
    p.add_argument("task", metavar="TASK_ID|FILE", help="a task id (level1/1_Square_Matmul, or a unique prefix) or a task file")
    p.add_argument("--policy", choices=["rules", "llm"], default="rules", help="rules (LLM-free, default) or llm")
    p.add_argument("--budget", type=int, default=None, help="most candidates to judge (rules; default 16)")
    add_device_flag(p)
    add_size_flag(p)
    add_suite_flag(p)
    p.add_argument("--out", default="cudal1-out", help="folder for best_<task>.py and report.json (default cudal1-out)")
    p.add_argument("--db", default=None, help="the store (SQLite file); default $CUDAL1_DB, else .cudal1/cudal1.db in this directory")
    p.add_argument("--allow-lower-precision", action="store_true",
                   help="also try TF32/bf16 candidates (reported separately, never the main result)")
    p.add_argument("--quick", action="store_true", help="fewer judge trials and timed calls (CPU smoke runs)")
    p.add_argument("--wall-time", type=float, default=None, metavar="S", help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    llm = p.add_argument_group("LLM policy (--policy llm)")
    llm.add_argument("--llm-base-url", default=None, help="OpenAI-compatible server, e.g. http://localhost:8000/v1")
    llm.add_argument("--llm-model", default=None, help="model name on the server, or hf:PATH for local weights")
    llm.add_argument("--rounds", type=int, default=None, help="LLM rounds (default 3)")
    llm.add_argument("--samples", type=int, default=None, help="LLM samples per round (default 4)")
    llm.add_argument("--exemplars", type=int, default=None, help="earlier implementations shown per prompt (default 2)")
    llm.add_argument("--exemplar-selection", choices=["bucket", "random", "topk", "island"], default=None,
                     help="how exemplars are drawn (default bucket)")
    llm.add_argument("--token-budget", type=int, default=None, help="stop when prompt+completion tokens exceed this")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace):
    """The `SearchOptions` the flags describe (flags left out keep the dataclass defaults)."""
    from ..search.options import LLMOptions, SearchOptions

    llm = LLMOptions(base_url=args.llm_base_url, model=args.llm_model, token_budget=args.token_budget)
    o = SearchOptions(device=args.device, size=size_or_default(args, args.task), out_dir=args.out, db=args.db,
                      allow_lower_precision=args.allow_lower_precision, wall_time_s=args.wall_time, llm=llm)
    for flag, name in (("budget", "budget"), ("rounds", "rounds"), ("samples", "samples"),
                       ("exemplars", "exemplars"), ("exemplar_selection", "exemplar_selection")):
        value = getattr(args, flag)
        if value is not None:
            setattr(o, name, value)
    if o.budget < 1:
        raise UsageError("--budget must be at least 1")
    if args.wall_time is not None and args.wall_time <= 0:
        raise UsageError("--wall-time must be positive")
    return o


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
