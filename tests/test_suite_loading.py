"""Loading a suite stays bounded and quiet: tasks that wait at import (a level-4 task asking the
Hugging Face hub with no network) are skipped in one line each, every load error is one line, and
a single file's id is its stem."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cudal1.cli.main import main
from cudal1.store import Store
from cudal1.tasks import TaskLoadError, exec_task_module, load_suite, load_task_file, resolve_task
from cudal1.tasks.loader import TaskSkipped, needs_isolation

TASK = '''"""Elementwise {op}."""

import torch
import torch.nn as nn

N = 64
{extra}

class Model(nn.Module):
    def forward(self, x):
        return torch.{op}(x)


def get_inputs():
    return [torch.randn(N, N)]


def get_init_inputs():
    return []
'''

SLEEPS = TASK.format(op="tanh", extra="import time\ntime.sleep(60)\n")
CONNECTS = TASK.format(op="tanh", extra='import socket\nsocket.create_connection(("10.255.255.1", 80), timeout=60)\n')
ASKS_THE_HUB = TASK.format(op="tanh", extra='from transformers import AutoConfig\n'
                           'config = AutoConfig.from_pretrained("cudal1-tests/no-such-model")\n')


def kernelbench_like(root: Path, level4: dict[str, str]) -> Path:
    """level1/ with two plain tasks (no SMOKE sizes, as in KernelBench) and level4/ with ``level4``."""
    (root / "level1").mkdir(parents=True)
    (root / "level1" / "1_Tanh.py").write_text(TASK.format(op="tanh", extra=""))
    (root / "level1" / "2_Relu.py").write_text(TASK.format(op="relu", extra=""))
    (root / "level4").mkdir()
    for name, source in level4.items():
        (root / "level4" / name).write_text(source)
    return root


def test_tasks_that_wait_at_import_are_skipped_within_the_limit(tmp_path):
    root = kernelbench_like(tmp_path / "kb", {"1_Sleeps_At_Import.py": SLEEPS, "2_Connects_At_Import.py": CONNECTS})
    start = time.monotonic()
    loaded = load_suite(root, import_timeout_s=1)
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"listing took {elapsed:.1f} s"  # each blocked file would otherwise take 60 s
    assert [t.id for t in loaded.tasks] == ["level1/1_Tanh", "level1/2_Relu"]
    assert all(isinstance(e, TaskSkipped) for e in loaded.errors) and len(loaded.errors) == 2
    sleeps, connects = (str(e) for e in loaded.errors)
    assert "1_Sleeps_At_Import.py: did not finish importing in 1 s" in sleeps
    assert "2_Connects_At_Import.py: needs the network at import" in connects


def test_a_file_that_computes_past_the_limit_is_not_cut(tmp_path):
    busy = "import time\nstart = time.monotonic()\nwhile time.monotonic() - start < 3:\n    pass\n"
    root = kernelbench_like(tmp_path / "kb", {"1_Computes_At_Import.py": TASK.format(op="tanh", extra=busy)})
    loaded = load_suite(root, import_timeout_s=1)
    assert loaded.errors == [] and loaded.by_id()["level4/1_Computes_At_Import"].input_specs == ("float32[64, 64]",)


def test_a_level4_task_asking_the_hugging_face_hub_is_skipped_at_once(tmp_path):
    pytest.importorskip("transformers")
    root = kernelbench_like(tmp_path / "kb", {"3_Gpt_From_Hub.py": ASKS_THE_HUB})
    start = time.monotonic()
    loaded = load_suite(root)
    assert time.monotonic() - start < 60  # offline at once, not the hub's connection timeouts
    (error,) = loaded.errors
    assert isinstance(error, TaskSkipped) and "3_Gpt_From_Hub.py: needs the network at import" in str(error)
    assert [t.id for t in loaded.tasks] == ["level1/1_Tanh", "level1/2_Relu"]


def test_a_file_asked_for_by_name_gets_one_bounded_try_with_the_network(tmp_path):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts the connection, never answers
        connect = f"import socket\nsocket.create_connection({server.getsockname()!r}).recv(1)\n"
        waits = TASK.format(op="tanh", extra=connect)
        path = tmp_path / "waits_for_an_answer.py"
        path.write_text(waits)
        start = time.monotonic()
        # offline: refused at once ("needs the network"); online: connected, then cut after 1 s of waiting
        with pytest.raises(TaskSkipped, match="did not finish importing in 1 s"):
            load_task_file(path, import_timeout_s=1)
        assert time.monotonic() - start < 30


def test_only_files_that_may_wait_leave_the_process():
    assert not needs_isolation(TASK.format(op="tanh", extra="import math\n# see https://example.com/hub\n"))
    assert needs_isolation(SLEEPS) and needs_isolation(CONNECTS) and needs_isolation(ASKS_THE_HUB)
    assert needs_isolation(TASK.format(op="tanh", extra='w = torch.hub.load("a/b", "c")\n'))
    assert not needs_isolation("def broken(:\n")  # fails here, at once


def test_cli_prints_each_problem_once_in_one_line(tmp_path, capsys, caplog):
    root = kernelbench_like(tmp_path / "kb", {"2_Connects_At_Import.py": CONNECTS})
    (root / "level1" / "3_Syntax_Error.py").write_text("def broken(:\n")
    assert main(["tasks", "list", "--suite", str(root)]) == 0
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert [line for line in lines if "2_Connects_At_Import.py" in line] == [
        f"skipped: {root / 'level4' / '2_Connects_At_Import.py'}: needs the network at import (load it where the "
        "network is reachable, or with its model in the Hugging Face cache)"]
    assert len([line for line in lines if "3_Syntax_Error.py" in line]) == 1
    assert not [r for r in caplog.records if r.levelname == "WARNING" and r.name.startswith("cudal1.tasks")]


def test_smoke_on_a_suite_without_smoke_sizes_is_one_line_naming_the_flag(tmp_path, capsys):
    level1 = tmp_path / "kb" / "level1"
    level1.mkdir(parents=True)
    for i in range(1, 9):
        (level1 / f"{i}_Tanh.py").write_text(TASK.format(op="tanh", extra=""))
    assert main(["tasks", "list", "--suite", str(tmp_path / "kb"), "--size", "smoke"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("load error: 8 files (")
    assert "this task has no SMOKE sizes; use --size full" in errors[0]
    with pytest.raises(ValueError, match=r"use --size full \(size='full' from Python\)"):
        exec_task_module(TASK.format(op="tanh", extra=""), size="smoke")


def test_python_warnings_of_task_modules_are_counted_not_shown(tmp_path, capsys):
    root = kernelbench_like(tmp_path / "kb", {})
    warns = "import warnings\nwarnings.warn('noisy task')\n"
    (root / "level1" / "3_Warns.py").write_text(TASK.format(op="exp", extra=warns))
    loaded = load_suite(root)
    assert loaded.warnings == 1 and len(loaded.tasks) == 3
    assert main(["tasks", "list", "--suite", str(root)]) == 0
    captured = capsys.readouterr()
    assert "noisy task" not in captured.out + captured.err
    assert "1 Python warning(s) from the task modules, not shown" in captured.err


def test_a_single_file_outside_a_kernelbench_layout_is_named_by_its_stem(tmp_path, monkeypatch):
    path = tmp_path / "my_task.py"
    path.write_text(TASK.format(op="tanh", extra=""))
    task = load_task_file(path)
    assert (task.id, task.level, task.name) == ("my_task", 0, "my_task")
    assert resolve_task(str(path)).id == "my_task"
    assert resolve_task("my_task", suite=tmp_path).path == str(path)  # at the top of the suite folder
    monkeypatch.chdir(tmp_path)
    assert resolve_task("my_task").id == "my_task"  # in the current folder
    numbered = tmp_path / "3_Numbered.py"
    numbered.write_text(TASK.format(op="relu", extra=""))
    assert load_task_file(numbered).id == "3_Numbered"
    kb = kernelbench_like(tmp_path / "kb", {})
    assert load_task_file(kb / "level1" / "2_Relu.py").id == "level1/2_Relu"  # the layout still names it
    store = Store(tmp_path / "store.db")
    store.add_task(task)
    assert store.task("my_task").id == "my_task"


def test_resolving_an_id_runs_only_that_task(tmp_path):
    root = kernelbench_like(tmp_path / "kb", {"1_Sleeps_At_Import.py": SLEEPS})
    marker = tmp_path / "imported"
    (root / "level1" / "3_Marks.py").write_text(TASK.format(op="exp", extra=f"open({str(marker)!r}, 'w').close()\n"))
    start = time.monotonic()
    assert resolve_task("level1/2", suite=root).id == "level1/2_Relu"
    assert time.monotonic() - start < 10 and not marker.exists()
    assert resolve_task("level1/3", suite=root).id == "level1/3_Marks" and marker.exists()
    (root / "level1" / "1_Tanh_Too.py").write_text(TASK.format(op="tanh", extra=""))
    with pytest.raises(TaskLoadError, match="ambiguous"):
        resolve_task("level1/1", suite=root)
