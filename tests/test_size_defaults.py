"""Without --size, a command picks the size for its device: smoke on a CPU when the task defines
smoke sizes, full on a GPU (and full for tasks without smoke sizes), and says so in its first line."""

from __future__ import annotations

import json

import pytest

from cudal1.cli.main import main

SIZE_COMMANDS = [["tasks", "list"], ["tasks", "show"], ["run-reference"], ["eval"], ["explain"], ["optimize"],
                 ["bench"], ["roofline"]]

NO_SMOKE_TASK = '''import torch
import torch.nn as nn

N = 64


class Model(nn.Module):
    def forward(self, x):
        return torch.tanh(x)


def get_inputs():
    return [torch.randn(N, N)]


def get_init_inputs():
    return []
'''


@pytest.mark.parametrize("command", SIZE_COMMANDS, ids=" ".join)
def test_help_states_the_default(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: smoke on a CPU when the task defines smoke sizes, full on a GPU" in text


def test_cpu_default_is_smoke_for_a_task_with_smoke_sizes(capsys):
    assert main(["run-reference", "level2/1", "--device", "cpu", "--iters", "1", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "size: smoke (default on cpu)"
    assert "level2/1_Gemm_BiasAdd_ReLU (smoke)" in out and "float32[64, 96]" in out


def test_json_output_stays_json_and_the_size_line_goes_to_stderr(capsys):
    assert main(["run-reference", "level2/1", "--device", "cpu", "--iters", "1", "--warmup", "0", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["size"] == "smoke"
    assert captured.err.splitlines()[0] == "size: smoke (default on cpu)"


def test_a_given_size_is_used_as_is_without_a_size_line(capsys):
    assert main(["tasks", "show", "level1/5", "--size", "full"]) == 0
    out = capsys.readouterr().out
    assert not out.startswith("size:") and "inputs (full): float32[4096]" in out


def test_tasks_without_smoke_sizes_default_to_full_on_a_cpu_too(tmp_path, capsys):
    (tmp_path / "kb" / "level1").mkdir(parents=True)
    (tmp_path / "kb" / "level1" / "1_Tanh.py").write_text(NO_SMOKE_TASK)
    (tmp_path / "kb" / "level1" / "2_Tanh_Again.py").write_text(NO_SMOKE_TASK)
    assert main(["tasks", "list", "--suite", str(tmp_path / "kb")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "size: full (default: 2 of 2 tasks define no smoke sizes)"
    assert "full size" in out and "float32[64, 64]" in out
    (tmp_path / "single.py").write_text(NO_SMOKE_TASK)
    assert main(["run-reference", str(tmp_path / "single.py"), "--device", "cpu", "--iters", "1", "--warmup", "0"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "size: full (default: the task defines no smoke sizes)"


def test_a_suite_listing_on_the_cpu_defaults_to_smoke(capsys):
    assert main(["tasks", "list", "--level", "1"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    if first == "size: full (default on cuda)":
        pytest.skip("a GPU is visible: covered by test_gpu_default_is_full")
    assert first == "size: smoke (default on cpu)" and "smoke size" in out


@pytest.mark.cuda
def test_gpu_default_is_full(capsys):
    assert main(["tasks", "show", "level1/5"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "size: full (default on cuda)" and "inputs (full)" in out
