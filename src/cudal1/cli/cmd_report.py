"""``cudal1 report``: tables, an HTML page or JSON for a stored run; ``--compare`` across runs (GPUs)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os

from rich.table import Table

from .cmd_bench import add_db_flag, render_result
from .common import UsageError, console, err_console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="statistics, HTML report or JSON of a stored run; --compare runs across GPUs")
    p.add_argument("run_id", nargs="?", type=int, metavar="RUN", help="a run id (see --list)")
    p.add_argument("--compare", nargs="+", type=int, metavar="RUN", help="compare runs side by side (e.g. one per GPU)")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report (plots embedded)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--list", action="store_true", help="list the stored runs")
    add_db_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.runner import BenchError, load_run
    from ..report.data import compare_json, result_json
    from ..store import Store

    if args.list:
        return _list_runs(args.db, args.json)
    store = Store(args.db)
    if args.compare:
        ids = ([args.run_id] if args.run_id else []) + args.compare
        if len(ids) < 2:
            raise UsageError("--compare needs at least two runs")
        try:
            results = [load_run(store, i) for i in ids]
        except BenchError as e:
            raise UsageError(str(e)) from None
        if args.json:
            console.print_json(json.dumps(compare_json(results)))
            return 0
        from ..report.tables import compare_tables

        for t in compare_tables(results):
            console.print(t)
        return 0
    if args.run_id is None:
        raise UsageError("give a run id (cudal1 report --list shows them)")
    try:
        result = load_run(store, args.run_id)
    except BenchError as e:
        raise UsageError(str(e)) from None
    if args.html:
        from ..report.html import write_html

        path = write_html(result, args.html, **_roofline_extras(result))
        (err_console if args.json else console).print(f"wrote {path}")
    if args.json:
        from ..report.data import roofline_fractions

        console.print_json(json.dumps(result_json(result, roofline_fractions(result))))
    elif not args.html:
        render_result(result)
    return 0


def _list_runs(db: str | None, as_json: bool) -> int:
    """The runs of one store, its path on the first line (on stderr with --json). A store that
    does not exist yet is not created: reading should leave no file behind."""
    from pathlib import Path

    from ..store import Store, default_db_path
    from ..store.db import OLD_DEFAULT_DB

    path = Path(db).expanduser() if db else default_db_path()
    (err_console if as_json else console).print(f"store: {path}", highlight=False, soft_wrap=True)
    runs = []
    if path.exists():
        with Store(path) as store:
            runs = store.runs()
    if as_json:
        console.print_json(json.dumps([r.to_json() for r in runs]))
        return 0
    if not runs:
        console.print("no runs here yet: optimize, bench and train record theirs in this file "
                      "(--db FILE or CUDAL1_DB=FILE reads another)", highlight=False)
        old = OLD_DEFAULT_DB.expanduser()
        if not db and "CUDAL1_DB" not in os.environ and old.exists():
            console.print(f"runs from before the per-directory store are in {old}: "
                          f"cudal1 report --list --db {old}", highlight=False, soft_wrap=True)
        return 0
    t = Table(header_style="bold")
    for c, kw in (("id", {"justify": "right"}), ("kind", {}), ("device", {}), ("started", {}), ("status", {}),
                  ("candidates", {"justify": "right"})):
        t.add_column(c, **kw)
    for r in runs:
        started = _dt.datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M")
        t.add_row(str(r.id), r.kind, r.device, started, r.status, str(r.candidates))
    console.print(t)
    return 0


def _roofline_extras(result) -> dict:
    """The "% of roofline" column, and the roofline chart when the run's GPU has measured peaks."""
    import base64
    import tempfile
    from pathlib import Path

    from ..analysis.roofline import bench_roofline_chart, charts_baselines
    from ..report.data import roofline_fractions
    from ..report.html import Plot

    cells = roofline_fractions(result)
    if cells is None:
        return {}
    with tempfile.TemporaryDirectory() as d:
        png = bench_roofline_chart(result, Path(d) / "roofline.png")
        of = ("its fastest accepted baseline (no candidate was accepted), named in brackets"
              if charts_baselines(result) else "its candidate")
        plots = (Plot("roofline", f"Arithmetic intensity of each task against the FLOP/s {of} achieved, "
                      "under the measured roofs of this GPU.", base64.b64encode(png.read_bytes()).decode("ascii")),) if png else ()
    return {"roofline": cells, "extra_plots": plots}
