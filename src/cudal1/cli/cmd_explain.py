"""``cudal1 explain``: a candidate's techniques and an ablation table measured by the judge."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from ..report.fit import FitTable
from .common import UsageError, add_device_flag, add_size_flag, add_suite_flag, console, device_or_usage_error, size_or_default, task_or_usage_error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="which techniques a candidate uses and what each one is worth (ablation)")
    p.add_argument("candidate", metavar="CANDIDATE.py", help="a ModelNew source file")
    p.add_argument("--task", required=True, help="task id (level1/1_Square_Matmul) or task file")
    add_device_flag(p)
    add_size_flag(p)
    add_suite_flag(p)
    p.add_argument("--components", default=None, metavar="A,B",
                   help="the optimizer strategies composed in the candidate (default: its header or the store)")
    p.add_argument("--no-ablation", action="store_true", help="only tag the candidate (no judging)")
    p.add_argument("--quick", action="store_true", help="fewer trials and timed calls (CPU smoke runs)")
    p.add_argument("--db", default=None, help="the store, to find the candidate's components and save its tags")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.set_defaults(func=run)


def _stored_candidate(db: str | None, task, source: str):
    """(store, candidate id, Candidate) when the store knows this source for this task."""
    from ..store import Store, default_db_path
    from ..tasks.contract import source_hash

    if db is None and not default_db_path().exists():
        return None, None, None
    store = Store(db)
    cid = store.find_candidate(task.id, source_hash(source))
    return store, cid, (store.candidate(cid) if cid is not None else None)


def run(args: argparse.Namespace) -> int:
    from ..analysis.ablation import components_from_source, explain_candidate, rules_regenerator
    from ..analysis.roofline import load_cached_peaks, percent_of_roofline
    from ..analysis.tags import find_tags
    from ..judge import JudgeConfig

    path = Path(args.candidate)
    if not path.is_file():
        raise UsageError(f"{path}: no such file (give the candidate's .py file)")
    source = path.read_text(encoding="utf-8")
    task = task_or_usage_error(args.task, size=size_or_default(args, args.task), suite=args.suite)
    device = device_or_usage_error(args.device)
    store, cid, stored = _stored_candidate(args.db, task, source)

    if args.no_ablation:
        hits = find_tags(task, source)
        if args.json:
            print(json.dumps({"task": task.id, "tags": [h.to_json() for h in hits]}, indent=2))
        else:
            _print_tags(hits)
        return 0

    components: tuple[str, ...] = ()
    if args.components:
        components = tuple(c.strip() for c in args.components.split(",") if c.strip())
    elif stored is not None and stored.meta.get("components"):
        components = tuple(stored.meta["components"])
    elif stored is not None and stored.policy == "rules" and stored.strategy:
        components = tuple(stored.strategy.split("+"))
    else:
        components = components_from_source(source)
    rules = "cudal1 rules candidate" in source[:300] or (stored is not None and stored.policy == "rules")
    regenerate = rules_regenerator(device) if components and rules else None
    # The kernel lists are run evidence for the tags: every candidate is profiled, whatever it declares.
    config = JudgeConfig.quick(profile_every_candidate=True) if args.quick else JudgeConfig(profile_every_candidate=True)

    with console.status(f"judging {path.name} and its ablations on {device} ..."):
        ex = explain_candidate(task, source, device=device, config=config, components=components, regenerate=regenerate)
    peaks = load_cached_peaks(device)
    roof = percent_of_roofline(task, ex.verdict.candidate_ms, peaks) if ex.verdict.accepted else "-"
    if store is not None and cid is not None:
        store.set_tags(cid, [t.id for t in ex.tags])
    if args.json:
        d = ex.to_json()
        d["roofline"] = {"percent": roof, "peaks_cached": peaks is not None}
        print(json.dumps(d, indent=2, default=str))
        return 0 if ex.verdict.accepted else 1

    v = ex.verdict
    speed = f"{v.speedup:.2f}x" if v.speedup else "-"
    console.print(f"[bold]{path.name}[/bold] on {task.id} ({task.size}, {ex.device}): {v.verdict}, speedup {speed}"
                  + (f", {roof} of roofline" if roof != "-" else ""))
    if peaks is None and v.accepted:
        console.print(f"[dim]no measured peaks for this device yet: cudal1 roofline --measure-peaks --device {device}[/dim]")
    _print_tags(ex.tags)
    if not v.accepted:
        reason = v.findings[0].message if v.findings else (v.details.error or "")
        console.print(f"[red]the candidate itself is {v.verdict}[/red]{': ' + str(reason)[:300] if reason else ''}; "
                      "ablation speedups need an accepted candidate")
        return 1
    if not ex.rows:
        console.print("nothing to ablate: no composed strategies and no global switches "
                      "(cuDNN benchmark, channels_last, CUDA graphs, torch.compile, TF32/autocast) in the source")
        return 0
    console.print(ablation_table(ex.rows))
    return 0


def _print_tags(hits) -> None:
    if not hits:
        console.print("techniques: none found")
        return
    console.print(tags_table(hits))


def tags_table(hits) -> Table:
    """The techniques found in a candidate: tag id, name, where the evidence came from, evidence."""
    from ..analysis.tags import catalogue

    t = FitTable(title="Techniques", title_justify="left", optional=("name",))
    t.add_column("tag", no_wrap=True)
    t.add_column("name")
    t.add_column("from", no_wrap=True)
    t.add_column("evidence")
    cat = catalogue()
    for h in hits:
        t.add_row(h.id, cat.get(h.id).name, h.origin, "; ".join(h.evidence))
    return t


def ablation_table(rows) -> Table:
    """One row per technique taken out: the judge's speedups with and without it, its contribution
    (with / without) and a mark when it hurts or is within the noise."""
    t = FitTable(title="Ablation: each technique removed in turn (speedups from the judge)", title_justify="left",
                 caption="contribution: with / without (above 1.00x the technique helps)", caption_justify="left",
                 optional=("kind",))
    t.add_column("technique", no_wrap=True)
    t.add_column("kind", no_wrap=True)
    for col in ("with", "without", "contribution"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("")
    t.add_column("what was removed")
    for r in rows:
        mark = ""
        if r.hurts:
            mark = ("[yellow]~ within noise[/yellow]" if r.within_noise
                    else "[bold red]HURTS: faster without it[/bold red]")
        elif r.contribution is not None and r.within_noise:
            mark = "[dim]~ within noise[/dim]"
        without = f"{r.without_speedup:.2f}x" if r.without_speedup else f"[red]{r.without_verdict}[/red]"
        contrib = f"{r.contribution:.2f}x" if r.contribution else "-"
        t.add_row(r.technique, r.kind, f"{r.with_speedup:.2f}x" if r.with_speedup else "-", without, contrib, mark,
                  r.change + (f" [dim]({r.note})[/dim]" if r.note else ""))
    return t
