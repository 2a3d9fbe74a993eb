"""tasks.runtime: timing callables and reference runs on the CPU."""

from __future__ import annotations

import time

import pytest
import torch

from cudal1.tasks import resolve_task
from cudal1.tasks.runtime import strict_fp32, time_callable, time_reference


def test_time_callable_counts_calls_and_measures_them():
    calls = []
    between = []
    times = time_callable(lambda: (calls.append(1), time.sleep(0.002)), "cpu", iters=4, warmup=2,
                          between=lambda: between.append(1))
    assert len(times) == 4 and len(calls) == 6 and len(between) == 4
    assert all(t >= 2.0 for t in times)
    with pytest.raises(ValueError):
        time_callable(lambda: None, "cpu", iters=0)


def test_time_reference_on_cpu():
    task = resolve_task("level1/27_Argmax", size="smoke")
    result = time_reference(task, "cpu", iters=3, warmup=1)
    assert result.outputs == ("int64[4, 40]",) and result.finite
    assert len(result.times_ms) == 3 and result.min_ms <= result.median_ms
    assert result.to_json()["median_ms"] == result.median_ms


def test_strict_fp32_restores_flags():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with strict_fp32():
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
