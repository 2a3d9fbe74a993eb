"""evaluate_many starts each next job's candidate process while the current one is judged."""

from __future__ import annotations

from cudal1.judge import JudgeConfig
from cudal1.judge.evaluate import Judge
from cudal1.judge.guard import child_pids
from cudal1.judge.refpool import idle_pids

from judge_helpers import RELU_TASK, make_task

GOOD = """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.clamp_min(x, 0.0) * 2.0
"""
ALSO_GOOD = GOOD.replace("torch.clamp_min(x, 0.0) * 2.0", "torch.relu(x) + torch.relu(x)")
# Needs a build (load_inline), and the build fails: no measurement, so the process started
# ahead for it is never taken over.
BROKEN_BUILD = """
import torch, torch.nn as nn
from torch.utils.cpp_extension import load_inline
raise RuntimeError("no compiler today")
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0
"""
WRONG = GOOD.replace("* 2.0", "* 3.0")


def test_next_process_is_prestarted_and_nothing_is_left_running(judge_cache):
    task = make_task(RELU_TASK)
    judge = Judge("cpu", JudgeConfig.quick(cache_dir=judge_cache, prestart_processes="on"))
    jobs = [(task, GOOD), (task, ALSO_GOOD), (task, WRONG), (task, BROKEN_BUILD), (task, GOOD)]
    verdicts = judge.evaluate_many(jobs)
    assert [v.verdict for v in verdicts] == ["accepted", "accepted", "incorrect", "build_error", "accepted"], \
        [v.to_record() for v in verdicts]
    started_ahead = [v.details.process_prestarted for v in verdicts]
    # The first has nobody before it; the fifth followed a job whose spare was never taken over.
    assert started_ahead == [False, True, True, None, False]
    # A pre-started process judges like a fresh one: same seeds, same checks.
    assert verdicts[2].finding_ids() and "output-mismatch" in verdicts[2].finding_ids()
    assert judge._spare is None and set(child_pids()) <= idle_pids()  # only warm references wait


def test_prestarted_process_of_a_broken_job_is_stopped_when_the_batch_ends(judge_cache):
    task = make_task(RELU_TASK)
    judge = Judge("cpu", JudgeConfig.quick(cache_dir=judge_cache, prestart_processes="on"))
    verdicts = judge.evaluate_many([(task, GOOD), (task, BROKEN_BUILD)])
    assert [v.verdict for v in verdicts] == ["accepted", "build_error"]
    assert judge._spare is None and set(child_pids()) <= idle_pids()  # only warm references wait


def test_prestart_off_starts_every_process_when_needed(judge_cache):
    task = make_task(RELU_TASK)
    judge = Judge("cpu", JudgeConfig.quick(cache_dir=judge_cache, prestart_processes="off"))
    verdicts = judge.evaluate_many([(task, GOOD), (task, ALSO_GOOD)])
    assert [v.details.process_prestarted for v in verdicts] == [False, False]



def two_new_tasks(tag: str):
    """Two tasks no earlier test has judged (the pool of warm reference processes outlives a test)."""
    first = make_task(RELU_TASK + f"# {tag} first\n", name=f"{tag}_first")
    second = make_task(RELU_TASK.replace("torch.relu(x) * 2.0", "(torch.relu(x) + 0.0) * 2.0") + f"# {tag}\n",
                       name=f"{tag}_second")
    return first, second


def test_next_tasks_reference_process_is_started_ahead(judge_cache):
    """A batch over different tasks: each next task's reference process starts while the current
    one is judged, so its evaluation finds it waiting (no Python + torch start-up of its own)."""
    first, second = two_new_tasks("ahead")
    judge = Judge("cpu", JudgeConfig.quick(cache_dir=judge_cache, prestart_processes="on"))
    verdicts = judge.evaluate_many([(first, GOOD), (second, GOOD)])
    assert [v.verdict for v in verdicts] == ["accepted", "accepted"], [v.to_record() for v in verdicts]
    assert [v.details.reference_process_reused for v in verdicts] == [False, True]
    assert set(child_pids()) <= idle_pids()  # only warm references wait


def test_without_prestart_each_new_task_starts_its_reference(judge_cache):
    first, second = two_new_tasks("not_ahead")
    judge = Judge("cpu", JudgeConfig.quick(cache_dir=judge_cache, prestart_processes="off"))
    verdicts = judge.evaluate_many([(first, GOOD), (second, GOOD)])
    assert [v.details.reference_process_reused for v in verdicts] == [False, False], [(v.details.remeasured, v.details.stage_s, v.details.process_prestarted) for v in verdicts]


def test_no_second_reference_process_for_the_task_being_judged(tmp_path):
    """In a batch of one task's candidates the next job's reference is the one in use: starting
    another would cost a Python + torch start-up per evaluation and then be thrown away."""
    from cudal1.judge import refpool

    key = ("busy-task", "smoke", "cpu", 1)

    def must_not_start(folder):
        raise AssertionError("a reference process was started for a task whose reference is in use")

    with refpool._lock:
        refpool._busy[key] += 1
    try:
        assert refpool.prestart(key, tmp_path, must_not_start) is None
    finally:
        with refpool._lock:
            refpool._busy[key] -= 1


def test_a_spare_warms_its_device_only_when_asked(tmp_path):
    """A process started ahead imports at once but touches the device only on `warm_ahead`
    (sent after the running evaluation's timing); the next request waits for that warm-up."""
    from cudal1.judge import protocol
    from cudal1.judge.process import WorkerProcess, WorkerSpec

    spec = WorkerSpec(role="candidate", device="cpu", work_dir=str(tmp_path / "w"), build_dir=str(tmp_path / "b"),
                      warm_device=True, defer_warm=True)
    with WorkerProcess(spec) as proc:
        assert proc.wait_ready(60)  # imports done, answered before any warm-up
        proc.warm_ahead()
        assert proc.pending is not None and proc.pending.name == "WarmDevice"
        proc.warm_ahead()  # once only
        reply, _ = proc.request(protocol.Ping(), 60)  # takes the warm-up's reply first
        assert isinstance(reply, protocol.Pong) and proc.pending is None
    plain = WorkerSpec(role="candidate", device="cpu", work_dir=str(tmp_path / "w2"), build_dir=str(tmp_path / "b2"),
                       warm_device=True)
    with WorkerProcess(plain) as proc:
        proc.warm_ahead()  # warmed at start: nothing to send
        assert proc.pending is None and proc.wait_ready(60)


def test_batch_spares_defer_their_warm_up_and_judge_alike(judge_cache, monkeypatch):
    """In a batch the spares start with their warm-up deferred and get it after the timing; the
    verdicts are those of processes started when needed."""
    from cudal1.judge.process import WorkerProcess

    asked = []
    real = WorkerProcess.warm_ahead
    monkeypatch.setattr(WorkerProcess, "warm_ahead", lambda self: (asked.append((self.spec.role, self.spec.defer_warm)),
                                                                    real(self))[1])
    first, second = two_new_tasks("deferred")
    judge = Judge("cpu", JudgeConfig.quick(cache_dir=judge_cache, prestart_processes="on"))
    verdicts = judge.evaluate_many([(first, GOOD), (second, ALSO_GOOD)])
    assert [v.verdict for v in verdicts] == ["accepted", "accepted"], [v.to_record() for v in verdicts]
    assert [v.details.process_prestarted for v in verdicts] == [False, True]
    # After the first evaluation's timing: the second job's candidate and its task's reference.
    assert sorted(asked) == [("candidate", True), ("reference", True)]
