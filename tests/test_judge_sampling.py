"""Timed calls with large outputs: the candidate's are checked on samples at positions its process
draws after each call, the reference keeps its own outputs and writes the same positions (Gather).
The attacks on this are in tests/hacks (timed_partial_rows, timed_sparse_corruption,
reused_output_buffer_wide) and run in test_judge_corpus.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cudal1.judge import JudgeConfig, evaluate
from cudal1.judge import session as session_mod

from judge_helpers import make_task

HACKS = Path(__file__).parent / "hacks"
WIDE = (HACKS / "tasks" / "wide_scale_task.py").read_text()  # a 20 MB output
FUSED = (HACKS / "legit" / "wide_scale_fused.py").read_text()


@pytest.fixture
def compared(monkeypatch):
    """(reference record sampled?, same seed as the candidate's?) for every sampled timed call."""
    cls = next(c for c in vars(session_mod).values() if isinstance(c, type) and hasattr(c, "sampled_expected"))
    seen, real = [], cls.sampled_expected

    def spy(self, exp, out, label):
        seen.append((exp.sample_seed is not None, exp.sample_seed == out.sample_seed))
        return real(self, exp, out, label)

    monkeypatch.setattr(cls, "sampled_expected", spy)
    return seen


def test_large_outputs_are_compared_on_the_same_positions_on_both_sides(judge_cache, compared):
    v = evaluate(make_task(WIDE), FUSED, device="cpu", config=JudgeConfig(cache_dir=judge_cache))
    assert v.verdict == "accepted", v.to_record()
    calls = len(v.details.candidate_times_ms)
    # About nine calls in ten sampled (binomial over 30 or more calls: fewer than half has odds
    # below 1e-9; all of them, 0.9^30 = 4%, is fine too).
    assert calls // 2 <= len(compared) <= calls, (len(compared), calls)
    assert all(gathered and same for gathered, same in compared)


def test_timed_sample_zero_compares_every_value(judge_cache, compared):
    v = evaluate(make_task(WIDE), FUSED, device="cpu", config=JudgeConfig(cache_dir=judge_cache, timed_sample=0))
    assert v.verdict == "accepted", v.to_record()
    assert compared == []


def test_keep_budget_is_a_tenth_of_memory_at_most():
    budget = session_mod.keep_budget("cpu")
    assert 0 < budget <= session_mod.KEEP_BYTES


def test_a_sample_of_another_size_than_asked_ends_the_evaluation():
    """The sample size is the judge's, not the candidate process's: a record with another one is
    a malformed reply; one with other shapes is a shape mismatch (None)."""
    from types import SimpleNamespace

    import torch

    from cudal1.judge.transfer import CallRecord

    me = SimpleNamespace(config=SimpleNamespace(timed_sample=4))
    exp = CallRecord(leaves=(torch.arange(100.0),), info=(), structure="T")
    ok = CallRecord(leaves=(torch.zeros(4),), info=(), structure="T", sample_seed=3, sample_n=4, shapes=((100,),))
    picked = session_mod.Measurement.sampled_expected(me, exp, ok, "call")
    assert picked.leaves[0].numel() == 4 and torch.equal(picked.leaves[0], torch.take(
        exp.leaves[0], session_mod.sample_indices(100, 3, 4, torch.randint, torch.Generator)))
    assert session_mod.Measurement.sampled_expected(me, exp, CallRecord(
        leaves=(torch.zeros(4),), info=(), structure="T", sample_seed=3, sample_n=4, shapes=((99,),)), "call") is None
    with pytest.raises(session_mod.Stop) as e:
        session_mod.Measurement.sampled_expected(me, exp, CallRecord(
            leaves=(torch.zeros(2),), info=(), structure="T", sample_seed=3, sample_n=2, shapes=((100,),)), "call")
    assert e.value.verdict == "rejected"


def test_the_references_writes_after_the_round_count_as_its_untimed_work(judge_cache, monkeypatch):
    """A candidate writes its large outputs (whole, or sampled) inside its round; the reference
    writes the same records only on Gather, after it. The untimed-work bar compares the two
    sides' work outside the timed calls, so the reference's Gather counts in its round: without
    it an H200 rejected exact copies of 64 MB-output tasks (84 ms a round against 23 ms)."""
    from cudal1.judge.protocol import Gather, TimeRound

    cls = next(c for c in vars(session_mod).values() if isinstance(c, type) and hasattr(c, "sampled_expected"))
    seen, real = [], cls.ask_reference

    def spy(self, req, timeout):
        reply, wall = real(self, req, timeout)
        if isinstance(req, TimeRound):
            seen.append(["round", wall * 1e3 - sum(reply.times_ms), 0.0])
        elif isinstance(req, Gather):
            seen[-1][2] = wall * 1e3
        return reply, wall

    monkeypatch.setattr(cls, "ask_reference", spy)
    v = evaluate(make_task(WIDE), FUSED, device="cpu", config=JudgeConfig(cache_dir=judge_cache))
    assert v.verdict == "accepted", v.to_record()
    timed = [r for r in seen if r[2] > 0]
    assert timed, seen  # the reference kept and gathered
    recorded = v.details.wallclock["reference_ms"]
    assert len(recorded) == len(seen)
    for (_, round_ms, gather_ms), got in zip(seen, recorded):
        assert got == pytest.approx(round_ms + gather_ms, abs=0.01)


def test_a_record_over_the_file_size_limit_says_which_setting_to_raise(judge_cache):
    """The candidate's file size limit also bounds the harness's own records (a trial's outputs and
    inputs): over it, the error names the setting, not a zip writer's position mismatch (an H200
    bench of a 1 GiB LayerNorm failed that way under the old 2 GiB limit)."""
    v = evaluate(make_task(WIDE), FUSED, device="cpu", config=JudgeConfig(cache_dir=judge_cache, file_size_limit_mb=8))
    assert v.verdict == "runtime_error", v.to_record()
    assert "file_size_limit_mb" in (v.details.error or ""), v.to_record()
