"""`judge_and_store`, the one path from proposals to stored verdicts: storing, reuse, copies in a
batch, the judge's own crashes, hack cases, stopping early, and judging without a store.

The judge here is a stand-in that answers at once (what is tested is the bookkeeping around
it; the real judge's verdicts go through the same path in test_optimize*, test_llm_search,
test_bench_e2e and test_train_stages)."""

from __future__ import annotations

import pytest

from cudal1.judge.verdict import Finding, Verdict
from cudal1.policies.base import Proposal
from cudal1.search import Recording, judge_and_store
from cudal1.search.judging import judge_failed
from cudal1.store import Candidate, Store
from cudal1.store.records import Attempt
from cudal1.tasks import Task, source_hash

REF = "import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n"
TASK = Task(id="level1/9_Double", level=1, name="Double", source=REF, source_hash=source_hash(REF), size="smoke", number=9)


def _accepted(speedup: float = 2.0) -> Verdict:
    return Verdict("accepted", True, speedup, 1.0, 1.0 / speedup, 0.0, (), "cpu", "2.x")


REJECTED = Verdict("rejected", True, None, 1.0, 0.1, 0.0, (Finding("side-stream", "reject", "line 3: a stream"),),
                   "cpu", "2.x")
CRASHED = Verdict("runtime_error", False, None, None, None, None, (Finding("crash", "reject", "judge error: boom"),),
                  "cpu", "2.x")


class StandIn:
    """Answers each job from ``answers`` (source -> verdict) and remembers what it was asked."""

    def __init__(self, answers: dict[str, Verdict]):
        self.answers = answers
        self.asked: list[list[str]] = []

    def __call__(self, jobs, on_result):
        self.asked.append([src for _, src in jobs])
        for i, (_, src) in enumerate(jobs):
            on_result(i, self.answers[src])


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "j.db") as s:
        yield s


def _cand(source: str, **kw) -> Candidate:
    return Candidate(TASK.id, source, policy=kw.pop("policy", "rules"), **kw)


def test_judges_once_per_source_and_stores_every_verdict(store):
    judge = StandIn({"a": _accepted(2.0), "b": _accepted(3.0)})
    run = store.start_run("test", {}, "Dev", "2.x")
    rec = Recording(store, "Dev", "k1", run)
    seen = []
    out = judge_and_store([(TASK, _cand("a")), (TASK, _cand("b")), (TASK, _cand("a"))], judge, rec,
                          on_attempt=lambda i, a: seen.append(i))
    assert judge.asked == [["a", "b"]]  # the copy of "a" is not judged again
    assert [a.verdict.speedup for a in out] == [2.0, 3.0, 2.0]
    assert [a.reused for a in out] == [False, False, True]
    assert sorted(seen) == [0, 1, 2]
    assert out[0].candidate_id == out[2].candidate_id  # an equal candidate is stored once
    assert store.find_verdict(TASK.source_hash, "smoke", source_hash("a"), "Dev", "k1") == _accepted(2.0)
    assert [r.kind for r in store.run_results(run)] == ["candidate", "candidate"]


def test_a_second_batch_reuses_stored_verdicts(store):
    rec = Recording(store, "Dev", "k1", store.start_run("test", {}, "Dev", "2.x"))
    judge_and_store([(TASK, _cand("a"))], StandIn({"a": _accepted()}), rec)
    again = StandIn({"a": _accepted(9.0)})
    run2 = store.start_run("test", {}, "Dev", "2.x")
    started = []
    attempt, copy = judge_and_store([(TASK, _cand("a")), (TASK, _cand("a"))], again, Recording(store, "Dev", "k1", run2),
                                    on_start=started.append)
    assert again.asked == [] and started == [[]]
    assert attempt.reused and attempt.verdict.speedup == 2.0 and copy == attempt
    assert [(r.reused, r.verdict.speedup) for r in store.run_results(run2)] == [(True, 2.0)]
    # another key (device or judge settings) does not reuse; neither does reuse=False
    other = StandIn({"a": _accepted(4.0)})
    judge_and_store([(TASK, _cand("a"))], other, Recording(store, "Dev", "k2"))
    judge_and_store([(TASK, _cand("a"))], other, Recording(store, "Dev", "k1", reuse=False))
    assert other.asked == [["a"], ["a"]]


def test_a_reused_verdict_is_recorded_for_another_candidate(store):
    judge_and_store([(TASK, _cand("a", policy="user"))], StandIn({"a": _accepted()}), Recording(store, "Dev", "k"))
    run = store.start_run("test", {}, "Dev", "2.x")
    [attempt] = judge_and_store([(TASK, _cand("a", policy="llm", strategy="r1"))], StandIn({}),
                                Recording(store, "Dev", "k", run))
    assert attempt.reused and attempt.policy == "llm"
    # the new candidate has its own verdict row (a resumed search finds it), listed as reused
    assert [a.candidate_id for a in store.history(TASK.id) if a.source == "a"][-1] == attempt.candidate_id
    assert store.run_results(run)[0].reused and store.run_results(run)[0].candidate_id == attempt.candidate_id


def test_a_verdict_of_the_judge_crashing_is_judged_again(store):
    assert judge_failed(CRASHED) and not judge_failed(REJECTED)
    judge_and_store([(TASK, _cand("a"))], StandIn({"a": CRASHED}), Recording(store, "Dev", "k"))
    again = StandIn({"a": _accepted()})
    [attempt] = judge_and_store([(TASK, _cand("a"))], again, Recording(store, "Dev", "k"))
    assert again.asked == [["a"]] and not attempt.reused and attempt.verdict.accepted


def test_rejected_candidates_join_the_hack_cases_when_asked(store):
    judge_and_store([(TASK, _cand("bad"))], StandIn({"bad": REJECTED}), Recording(store, "Dev", "k"))
    assert store.hacks() == []
    judge_and_store([(TASK, _cand("bad2"))], StandIn({"bad2": REJECTED}),
                    Recording(store, "Dev", "k", hack_origin="train:test"))
    [hack] = store.hacks()
    assert hack.source == "bad2" and hack.origin == "train:test" and "[side-stream]" in hack.reason


def test_stop_leaves_the_rest_unjudged(store):
    judge = StandIn({s: _accepted() for s in "abc"})
    out = judge_and_store([(TASK, _cand(s)) for s in "abc"], judge, Recording(store, "Dev", "k"), stop=lambda: True)
    assert [a is not None for a in out] == [True, False, False]
    assert store.find_verdict_id(TASK.source_hash, "smoke", source_hash("b"), "Dev", "k") is None


def test_without_a_store_it_only_judges():
    judge = StandIn({"a": _accepted(), "b": REJECTED})
    out = judge_and_store([(TASK, _cand("a")), (TASK, _cand("b"))], judge,
                          Recording(None, "Dev", "k", hack_origin="train:x"))
    assert [a.verdict.verdict for a in out] == ["accepted", "rejected"] and out[0].candidate_id is None


def test_candidate_from_proposal_and_attempt_of():
    p = Proposal("src", "fuse", notes="n", parents=(3,), components=("fuse", "graph"), lower_precision=True)
    c = Candidate.from_proposal(TASK.id, p, "rules", {"signature": "mm"})
    assert (c.policy, c.strategy, c.parents, c.notes) == ("rules", "fuse", (3,), "n")
    assert c.meta == {"components": ["fuse", "graph"], "lower_precision": True, "signature": "mm"}
    a = Attempt.of(c, _accepted(), candidate_id=7)
    assert (a.components, a.lower_precision, a.is_lower_precision, a.candidate_id, a.faster) == (
        ("fuse", "graph"), True, True, 7, True)  # no interval measured: the point speedup above 1.0 counts
    assert Candidate(TASK.id, "x", policy="baseline", strategy="eager").run_kind == "baseline:eager"
