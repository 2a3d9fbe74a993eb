"""benchmarks/suite_times.py on the CPU: every task gets a row, a failing task does not stop the run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "suite_times.py"

GOOD = '''"""Elementwise tanh."""
import torch
import torch.nn as nn

N = 512
SMOKE = {"N": 16}


class Model(nn.Module):
    def forward(self, x):
        return torch.tanh(x)


def get_inputs():
    return [torch.randn(N, N)]


def get_init_inputs():
    return []
'''


def _load_script():
    spec = importlib.util.spec_from_file_location("suite_times", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_suite_times_records_failures_and_writes_tables(tmp_path):
    level1 = tmp_path / "kb" / "level1"
    level1.mkdir(parents=True)
    (level1 / "1_Tanh.py").write_text(GOOD)
    (level1 / "2_Breaks_In_Forward.py").write_text(GOOD.replace("torch.tanh(x)", "x @ torch.ones(3, 3)"))
    (level1 / "3_Syntax.py").write_text("def (:\n")
    md, js = tmp_path / "t.md", tmp_path / "t.json"
    rc = _load_script().main(["--suite", str(tmp_path / "kb"), "--device", "cpu", "--size", "smoke", "--no-compile",
                              "--iters", "2", "--warmup", "1", "--markdown", str(md), "--json", str(js)])
    assert rc == 0
    rows = {Path(r["task"]).name if "/" in r["task"] and r["task"].endswith(".py") else r["task"]: r
            for r in json.loads(js.read_text())["rows"]}
    assert rows["level1/1_Tanh"]["eager_ms"] > 0 and rows["level1/1_Tanh"]["errors"] == []
    assert rows["level1/2_Breaks_In_Forward"]["eager_ms"] is None
    assert rows["level1/2_Breaks_In_Forward"]["errors"][0].startswith("eager: RuntimeError")
    assert rows["3_Syntax.py"]["errors"][0].startswith("load:")
    text = md.read_text()
    assert "| task | inputs | eager ms | compile ms | compile/eager | peak MB |" in text
    assert "| level1/1_Tanh | float32[16, 16] |" in text and "Errors:" in text
