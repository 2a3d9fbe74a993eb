"""A build killed half-way leaves PyTorch's extension ``lock`` file behind; the next build of the
same source must not wait on it forever."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cudal1.judge import JudgeConfig
from cudal1.judge.evaluate import Judge

from judge_helpers import make_task

HACKS = Path(__file__).parent / "hacks"
CPP = (HACKS / "legit" / "cpp_openmp.py").read_text()  # its target: hacks/tasks/relu_task.py


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler")
def test_stale_extension_lock_of_a_killed_build_is_removed(judge_cache):
    task = make_task((HACKS / "tasks" / "relu_task.py").read_text())
    # Long enough for one real compile here, far shorter than forever.
    judge = Judge("cpu", JudgeConfig.quick(cache_dir=judge_cache, build_timeout_s=240))
    build_dir = judge.build_dir(CPP)
    os.makedirs(os.path.join(build_dir, "relu_omp"))
    Path(build_dir, "relu_omp", "lock").touch()  # what a build killed while compiling leaves
    result = judge.build(task, CPP)
    assert result.ok, result.error
    assert not Path(build_dir, "relu_omp", "lock").exists()
    assert judge.build(task, CPP).cached
    assert judge.evaluate(task, CPP).verdict == "accepted"
