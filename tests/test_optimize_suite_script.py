"""benchmarks/optimize_suite.py on the CPU: --wall-time stops a task's search and says so."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "optimize_suite.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("optimize_suite", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def test_wall_time_stops_the_search_before_the_budget_is_spent(tmp_path):
    script = _load_script()
    rc = script.main(["--suite", "builtin", "--size", "smoke", "--quick", "--tasks", "level1/5_*", "--budget", "4",
                      "--wall-time", "0.01", "--no-compile-baseline", "--out", str(tmp_path)])
    assert rc == 0
    [task] = json.loads((tmp_path / "results.json").read_text())["tasks"]
    assert task["stop_reason"] == "wall-time"
    assert len(task["tried"]) < 4  # the budget was not what stopped it
    assert "wall time" in task["message"]


def test_a_wall_time_that_is_not_positive_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        _load_script().main(["--wall-time", "0"])
    assert e.value.code == 2
    assert "--wall-time must be a positive number of seconds" in capsys.readouterr().err
