"""Loading a KernelBench-layout checkout: both layouts, odd names, and one clear error per bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cudal1.cli.main import main
from cudal1.tasks import TaskLoadError, load_suite, load_task_file, resolve_task

GOOD = '''"""Elementwise {op} of a {n}x{n} matrix."""

import torch
import torch.nn as nn

N = 1024

SMOKE = {{"N": 8}}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.{op}(x)


def get_inputs():
    return [torch.randn(N, N)]


def get_init_inputs():
    return []
'''

# file name -> (source, words the error must contain)
BAD = {
    "3_Syntax_Error.py": ("def broken(:\n    pass\n", "does not parse"),
    "4_No_Model.py": (GOOD.replace("class Model(", "class Other("), "lacks Model"),
    "5_No_Get_Inputs.py": (GOOD.replace("def get_inputs(", "def make_inputs("), "lacks get_inputs"),
    "6_No_Get_Init_Inputs.py": (GOOD.replace("def get_init_inputs(", "def init_args("), "lacks get_init_inputs"),
    "7_Inputs_Raise.py": (GOOD.replace("return [torch.randn(N, N)]", "raise ValueError('no data')"), "get_inputs() raises ValueError"),
    "helper_not_a_task.py": (GOOD, "is not named ID_Name.py"),
}


def write_checkout(root: Path, with_bad: bool = True) -> Path:
    level1 = root / "level1"
    level1.mkdir(parents=True)
    (level1 / "1_Tanh.py").write_text(GOOD.format(op="tanh", n=1024))
    (level1 / "2_Relu_.py").write_text(GOOD.format(op="relu", n=1024))  # KernelBench has names ending in '_'
    (level1 / "__init__.py").write_text("")
    if with_bad:
        for name, (source, _) in BAD.items():
            (level1 / name).write_text(source.format(op="exp", n=1024) if "{op}" in source else source)
    level2 = root / "level2"
    level2.mkdir()
    (level2 / "1_Sigmoid.py").write_text(GOOD.format(op="sigmoid", n=1024))
    return root


@pytest.mark.parametrize("layout", ["levels_at_root", "repository_root"])
def test_loads_both_kernelbench_layouts(tmp_path, layout):
    root = tmp_path / "checkout"
    write_checkout(root / "KernelBench" if layout == "repository_root" else root, with_bad=False)
    loaded = load_suite(root)
    assert loaded.errors == []
    assert [t.id for t in loaded.tasks] == ["level1/1_Tanh", "level1/2_Relu_", "level2/1_Sigmoid"]
    relu = loaded.by_id()["level1/2_Relu_"]
    assert relu.name == "Relu_" and relu.number == 2 and relu.level == 1 and relu.suite == str(root)
    assert relu.input_specs == ("float32[1024, 1024]",)
    assert relu.description == "Elementwise relu of a 1024x1024 matrix."
    assert [t.id for t in load_suite(root, level=2).tasks] == ["level2/1_Sigmoid"]


def test_each_bad_file_gives_one_error_naming_it_and_the_rest_loads(tmp_path):
    root = write_checkout(tmp_path / "kb")
    loaded = load_suite(root)
    assert [t.id for t in loaded.tasks] == ["level1/1_Tanh", "level1/2_Relu_", "level2/1_Sigmoid"]
    assert len(loaded.errors) == len(BAD)
    by_file = {Path(e.path).name: str(e) for e in loaded.errors}
    assert set(by_file) == set(BAD)
    for name, (_, words) in BAD.items():
        message = by_file[name]
        assert name in message and words in message, message
        assert "\n" not in message


def test_smoke_size_override_is_applied(tmp_path):
    root = write_checkout(tmp_path / "kb", with_bad=False)
    smoke = load_suite(root, size="smoke").by_id()["level1/1_Tanh"]
    assert smoke.size == "smoke" and smoke.input_specs == ("float32[8, 8]",)
    full = load_task_file(root / "level1" / "1_Tanh.py")
    assert full.input_specs == ("float32[1024, 1024]",) and full.source_hash == smoke.source_hash


def test_smoke_naming_an_unknown_constant_is_an_error(tmp_path):
    path = tmp_path / "level1" / "1_Bad_Smoke.py"
    path.parent.mkdir()
    path.write_text(GOOD.format(op="tanh", n=4).replace('{"N": 8}', '{"BATCH": 8}'))
    with pytest.raises(TaskLoadError, match="BATCH"):
        load_task_file(path, size="smoke")
    assert load_task_file(path).id == "level1/1_Bad_Smoke"


def test_resolve_task_by_id_prefix_and_by_file(tmp_path):
    root = write_checkout(tmp_path / "kb", with_bad=False)
    assert resolve_task("level1/2", suite=root).id == "level1/2_Relu_"
    assert resolve_task(str(root / "level2" / "1_Sigmoid.py")).id == "level2/1_Sigmoid"
    assert resolve_task("level1/1", size="smoke").id == "level1/1_Square_Matmul"
    with pytest.raises(TaskLoadError, match="neither"):
        resolve_task("level9/99", suite=root)


def test_not_a_checkout_is_one_error(tmp_path):
    loaded = load_suite(tmp_path)
    assert loaded.tasks == [] and len(loaded.errors) == 1 and "level1/" in str(loaded.errors[0])


def test_cli_tasks_list_shows_every_task_and_the_errors(tmp_path, capsys):
    root = write_checkout(tmp_path / "kb")
    assert main(["tasks", "list", "--suite", str(root), "--size", "smoke"]) == 0
    captured = capsys.readouterr()
    for task_id in ("level1/1_Tanh", "level1/2_Relu_", "level2/1_Sigmoid"):
        assert task_id in captured.out
    assert "float32[8, 8]" in captured.out
    for name in BAD:
        assert name in captured.err
    assert main(["tasks", "list", "--suite", str(tmp_path / "empty_dir_that_is_missing")]) == 1


def test_cli_tasks_list_builtin_and_show(capsys):
    assert main(["tasks", "list", "--level", "3"]) == 0
    out = capsys.readouterr().out
    assert "level3/1_MLP" in out and "level1/" not in out
    assert main(["tasks", "show", "level1/5", "--size", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "level1/5_Diag_Matmul" in out and "torch.diag" in out and "float32[128]" in out
    assert main(["tasks", "show", "level1/999"]) == 2


def test_cli_run_reference_json(capsys):
    assert main(["run-reference", "level2/1", "--size", "smoke", "--device", "cpu", "--iters", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "level2/1_Gemm_BiasAdd_ReLU" and result["size"] == "smoke"
    assert result["outputs"] == ["float32[64, 96]"] and len(result["times_ms"]) == 3 and result["finite"]
    assert main(["run-reference", "level2/1", "--size", "smoke", "--device", "cpu", "--iters", "2"]) == 0
    assert "float32[64, 96]" in capsys.readouterr().out
    assert main(["run-reference", "level2/1", "--iters", "0"]) == 2
