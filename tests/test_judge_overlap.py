"""Both processes set up, and (from a task's second evaluation on) run their correctness trials,
at the same time; the verdicts are those of the one-after-the-other order."""

from __future__ import annotations

import pytest

from cudal1.judge import JudgeConfig
from cudal1.judge.evaluate import Judge

from judge_helpers import RELU_TASK, make_task

GOOD = """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.clamp_min(x, 0.0) * 2.0
"""
WRONG = GOOD.replace("* 2.0", "* 3.0")
# Leaves torch.empty's memory unwritten in part: the allocator poison, sized from the reference's
# output bytes learned in an earlier evaluation, must still show it (on CPU: the values are wrong).
PARTIAL = GOOD.replace("return torch.clamp_min(x, 0.0) * 2.0",
                       "out = torch.empty_like(x)\n        out[: x.shape[0] // 2] = torch.clamp_min(x[: x.shape[0] // 2], 0.0) * 2.0\n        return out")
# Fails while the reference sets up (the build, which imports it, passes).
INIT_FAILS = GOOD.replace("class ModelNew(nn.Module):", "class ModelNew(nn.Module):\n    def __init__(self):\n        raise RuntimeError('not today')")
FORWARD_FAILS = GOOD.replace("return torch.clamp_min(x, 0.0) * 2.0", "raise RuntimeError('not today')")


def _order(verdict) -> list[str]:
    return [s for s in verdict.details.stage_s if s in ("reference_trials", "candidate_trials")]


@pytest.mark.parametrize("sandbox,overlaps", [("strict", True), ("off", False)])
def test_trials_overlap_from_the_second_evaluation_where_the_cache_is_hidden(tmp_path, sandbox, overlaps):
    task = make_task(RELU_TASK)
    try:  # a cache of its own: no earlier judge has recorded this task's output size
        judge = Judge("cpu", JudgeConfig.quick(cache_dir=str(tmp_path), sandbox=sandbox))
    except ValueError as e:  # no bubblewrap here
        pytest.skip(str(e))
    first, wrong, partial, good = (judge.evaluate(task, s) for s in (GOOD, WRONG, PARTIAL, GOOD))
    key = judge.reference_key(task)
    assert judge.output_bytes.get(key) == 256 * 256 * 4  # RELU_TASK's float32 output
    assert _order(first) == ["reference_trials", "candidate_trials"]  # the output size is not known yet
    later = ["candidate_trials", "reference_trials"] if overlaps else ["reference_trials", "candidate_trials"]
    assert _order(wrong) == _order(good) == later
    assert (first.verdict, wrong.verdict, good.verdict) == ("accepted", "incorrect", "accepted")
    assert partial.verdict in ("incorrect", "rejected"), partial.to_record()


def test_a_later_judge_on_the_same_cache_overlaps_from_its_first_evaluation(tmp_path):
    """The output size is kept in the judge's cache (hidden from candidates), so the next run on
    this machine (a bench re-run, the optimizer's next task list) gains from a task's first
    evaluation; the poison it sizes still catches unwritten output memory."""
    task = make_task(RELU_TASK)
    try:
        config = JudgeConfig.quick(cache_dir=str(tmp_path), sandbox="strict")
        assert Judge("cpu", config).evaluate(task, GOOD).verdict == "accepted"
    except ValueError as e:  # no bubblewrap here
        pytest.skip(str(e))
    later = Judge("cpu", config)
    assert later.output_bytes.get(later.reference_key(task)) == 256 * 256 * 4
    good, partial = later.evaluate(task, GOOD), Judge("cpu", config).evaluate(task, PARTIAL)
    assert _order(good) == _order(partial) == ["candidate_trials", "reference_trials"]
    assert good.verdict == "accepted" and partial.verdict in ("incorrect", "rejected"), partial.to_record()
    # An unreadable table costs only the overlap.
    (tmp_path / "output_bytes.json").write_text("{not json")
    fresh = Judge("cpu", config)
    assert fresh.output_bytes.get(fresh.reference_key(task)) is None
    assert _order(fresh.evaluate(task, GOOD)) == ["reference_trials", "candidate_trials"]


@pytest.mark.parametrize("broken", [INIT_FAILS, FORWARD_FAILS], ids=["init", "forward"])
def test_candidate_failing_beside_a_busy_reference_leaves_it_reusable(judge_cache, broken):
    task = make_task(RELU_TASK)
    judge = Judge("cpu", JudgeConfig.quick(cache_dir=judge_cache))
    assert judge.evaluate(task, GOOD).verdict == "accepted"
    failed = judge.evaluate(task, broken)
    assert failed.verdict == "runtime_error", failed.to_record()
    after = judge.evaluate(task, GOOD)
    # The request the reference was running when the candidate stopped was collected: the same
    # process served the failed evaluation and the next one.
    assert failed.details.reference_process_reused and after.details.reference_process_reused
    assert after.verdict == "accepted"
