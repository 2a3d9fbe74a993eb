"""LLMPolicy: plans → prompts → parallel completions → proposals (malformed ones kept with a reason)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import llm_fixtures as fx  # noqa: E402
from llm_server import ScriptedLLMServer  # noqa: E402

pytest.importorskip("openai")
from cudal1.judge.verdict import Verdict  # noqa: E402
from cudal1.policies.base import Attempt, Context  # noqa: E402
from cudal1.policies.llm import LLMPolicy, OpenAIBackend, SamplePlan  # noqa: E402
from cudal1.tasks import resolve_task  # noqa: E402


def task():
    return resolve_task("level1/1_Square_Matmul", size="smoke")


def acc(speedup, cid):
    return Attempt(f"class ModelNew:  # exemplar {cid}\n    pass\n",
                   Verdict("accepted", True, speedup, 1.0, 1.0, 0.0, (), "cpu", "2"), candidate_id=cid)


def test_sample_keeps_plan_order_and_provenance():
    def responder(req):
        return fx.CORRECT if "exemplar 7" in req["messages"][0]["content"] else fx.MALFORMED

    with ScriptedLLMServer(responder) as server:
        policy = LLMPolicy(OpenAIBackend(server.base_url, "m", parallel=3), device="cpu")
        plans = [SamplePlan((acc(1.5, 7), acc(0.8, 3)), lineage=0), SamplePlan((), feedback="It failed to build.", lineage=1)]
        samples = policy.sample(task(), plans)
    ok, bad = samples
    assert ok.failure is None and "torch.relu(x)" in ok.proposal.source
    assert ok.proposal.parents == (7, 3) and ok.proposal.template_version == "contrastive_v1"
    assert ok.proposal.strategy == "llm-contrastive" and ok.proposal.notes.startswith("Apply one vectorized")
    assert ok.proposal.prompt in server.prompts()[0] or ok.proposal.prompt in server.prompts()[1]
    assert bad.failure == "no code block in the response" and bad.proposal.source == ""
    assert bad.proposal.template_version == "first_round_v1" and "It failed to build." in bad.proposal.prompt
    assert bad.proposal.response == fx.MALFORMED


def test_propose_shows_the_fastest_and_drops_malformed():
    answers = iter([fx.CORRECT, fx.MALFORMED, fx.CORRECT])
    with ScriptedLLMServer(lambda req: next(answers)) as server:
        policy = LLMPolicy(OpenAIBackend(server.base_url, "m", parallel=1), device="cpu")
        history = [acc(1.1, 1), acc(3.0, 2), acc(2.0, 3)]
        proposals = policy.propose(task(), Context(device="cpu", history=history, budget=3))
    assert len(proposals) == 2 and all("ModelNew" in p.source for p in proposals)
    prompt = server.prompts()[0]
    assert "exemplar 2" in prompt and "exemplar 3" in prompt and "exemplar 1" not in prompt
