"""The LLM search end to end: a real local OpenAI-compatible server, the real judge and store,
through ``cudal1 optimize --policy llm`` (CPU, smoke size)."""

import json
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import llm_fixtures as fx  # noqa: E402
from llm_server import ScriptedLLMServer  # noqa: E402

pytest.importorskip("openai")

from cudal1.cli.main import main  # noqa: E402
from cudal1.judge import JudgeConfig  # noqa: E402
from cudal1.policies.llm.backends import OpenAIBackend, TokenBudget  # noqa: E402
from cudal1.search.llm_loop import search  # noqa: E402
from cudal1.search.options import LLMOptions, SearchOptions  # noqa: E402
from cudal1.store import Store  # noqa: E402
from cudal1.tasks import resolve_task  # noqa: E402


class Script:
    """Serves the first-round answers in arrival order, then ``later``; answers checker prompts."""

    def __init__(self, first, later):
        self.first = list(first)
        self.later = later
        self.lock = threading.Lock()

    def __call__(self, request):
        prompt = request["messages"][-1]["content"]
        if fx.CHECKER_MARK in prompt:
            return fx.checker_answer(prompt)
        with self.lock:
            return self.first.pop(0) if self.first else self.later


def search_prompts(server):
    return [p for p in server.prompts() if fx.CHECKER_MARK not in p]


@pytest.mark.slow
def test_optimize_policy_llm_end_to_end(tmp_path):
    task_file = fx.write_task(tmp_path)
    db, out = tmp_path / "store.db", tmp_path / "out"
    script = Script([fx.CORRECT, fx.BROKEN, fx.MALFORMED, fx.MUTATES, fx.CHECKER_HACK], later=fx.CORRECT)
    argv = ["optimize", task_file, "--policy", "llm", "--llm-model", "scripted", "--samples", "5",
            "--size", "smoke", "--device", "cpu", "--db", str(db), "--out", str(out), "--quick", "--json"]
    with ScriptedLLMServer(script) as server:
        rc = main(argv + ["--llm-base-url", server.base_url, "--rounds", "2"])
        prompts = search_prompts(server)
        checker_prompts = [p for p in server.prompts() if fx.CHECKER_MARK in p]
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    store = Store(db)
    tried = {t["candidate_id"]: t for t in report["tried"]}
    by_code = {}
    for cid in tried:
        by_code[store.candidate(cid).source] = tried[cid]

    def verdict_of(answer):
        code = answer.split("```python\n", 1)[1].rsplit("```", 1)[0]
        return by_code[code]

    # the correct one is accepted (and faster than the row-by-row reference)
    assert verdict_of(fx.CORRECT)["verdict"] == "accepted" and verdict_of(fx.CORRECT)["speedup"] > 1.0
    # the broken one fails in the judge; the hacking one (input mutation) is rejected
    assert verdict_of(fx.BROKEN)["verdict"] == "runtime_error"
    assert verdict_of(fx.MUTATES)["verdict"] == "rejected"
    assert "input-mutated" in [f["id"] for f in verdict_of(fx.MUTATES)["findings"]]
    # the malformed one is stored as a candidate with its reason and no verdict
    (malformed,) = report["extra"]["malformed"]
    cand = store.candidate(malformed["candidate_id"])
    assert cand.meta["failure"] == "no code block in the response" and cand.response == fx.MALFORMED
    assert malformed["candidate_id"] not in {a.candidate_id for a in store.history(cand.task_id)}
    # the checker saw the suspicious accepted candidates; the clamp_min one became a confirmed hack,
    # is not in `tried` and is not the written best
    assert checker_prompts and any("clamp_min" in fx.checker_candidate(p) for p in checker_prompts)
    (hack,) = report["extra"]["checker_rejected"]
    assert "special-cases" in hack["reason"]
    assert [h.source_hash for h in store.hacks()] == [store.candidate(hack["candidate_id"]).source_hash]
    assert all("clamp_min" not in store.candidate(c).source for c in tried)
    best = (out / Path(report["best"]["path"]).name).read_text()
    assert "clamp_min" not in best and "torch.relu(x)" in best and best.startswith("# cudal1: ACCEPTED")
    # every stored LLM candidate carries its prompt, response and template version
    llm_ids = [c for c in tried if tried[c]["policy"] == "llm"]
    for c in llm_ids:
        rec = store.candidate(c)
        assert rec.prompt and rec.response and rec.template_version in ("first_round_v1", "contrastive_v1")
    # round 1 has no accepted LLM exemplars yet unless the rules seed was accepted; round 2 is contrastive
    round1, round2 = prompts[:5], prompts[5:10]
    assert len(prompts) == 10
    assert all("### Performance Analysis" in p for p in prompts)
    correct_code = fx.CORRECT.split("```python\n", 1)[1].rsplit("```", 1)[0].strip()
    assert all("Earlier implementations" in p and correct_code in p for p in round2)
    assert all(f"speedup {verdict_of(fx.CORRECT)['speedup']:.2f}x" in p for p in round2)
    # each failure reaches the next round's prompt of its lineage
    assert sum("relu_fused_fast" in p for p in round2) == 1
    assert sum("no code block in the response" in p for p in round2) == 1
    assert sum("input-mutated" in p for p in round2) == 1
    assert sum("reward hack" in p and "special-cases" in p for p in round2) == 1
    assert not any("What went wrong" in p for p in round1)
    assert report["extra"]["tokens"]["requests"] == len(server.requests)

    # a rerun with more rounds continues after the stored rounds (round 3 only)
    with ScriptedLLMServer(Script([], later=fx.CORRECT)) as server2:
        rc = main(argv + ["--llm-base-url", server2.base_url, "--rounds", "3"])
        assert len(search_prompts(server2)) == 5
    assert rc == 0
    report2 = json.loads((out / "report.json").read_text())
    assert report2["extra"]["rounds"] == {"done_now": 1, "resumed_from": 2}
    assert any(t["strategy"].endswith("r3.1") for t in report2["tried"])


def _options(server_url, tmp_path, **kw):
    llm = LLMOptions(base_url=server_url, model="scripted", parallel=2, token_budget=kw.pop("token_budget", None))
    return SearchOptions(device="cpu", size="smoke", seed_with_rules=False, db=str(tmp_path / "s.db"),
                         out_dir=str(tmp_path / "out"), llm=llm, **kw)


def test_token_budget_stops_the_loop(tmp_path):
    task = resolve_task(fx.write_task(tmp_path), size="smoke")
    with ScriptedLLMServer(lambda req: fx.MALFORMED, usage=(50, 10)) as server:
        opts = _options(server.base_url, tmp_path, rounds=5, samples=2, token_budget=100)
        outcome = search(task, opts, store=Store(tmp_path / "s.db"), judge_config=JudgeConfig.quick())
    # 60 tokens per answer: both first-round requests start under the budget, together they
    # spend it, and no second round starts
    assert outcome.stop_reason == "token-budget"
    assert outcome.rounds_done == 1 and len(server.requests) == 2
    assert outcome.tokens["prompt_tokens"] + outcome.tokens["completion_tokens"] == 120
    assert [e.status for e in outcome.entries] == ["malformed", "malformed"]
    # the next round's prompts would carry the malformed reason for each lineage
    store = Store(tmp_path / "s.db")
    assert {store.candidate(e.candidate_id).meta["failure"] for e in outcome.entries} == {"no code block in the response"}


def test_budget_refusal_mid_round_is_not_stored(tmp_path):
    task = resolve_task(fx.write_task(tmp_path), size="smoke")
    with ScriptedLLMServer(lambda req: fx.MALFORMED, usage=(90, 20)) as server:
        opts = _options(server.base_url, tmp_path, rounds=3, samples=3, token_budget=100)
        backend = OpenAIBackend(server.base_url, "scripted", parallel=1, budget=TokenBudget(100))
        outcome = search(task, opts, store=Store(tmp_path / "s.db"), judge_config=JudgeConfig.quick(), backend=backend)
    assert len(server.requests) == 1 and len(outcome.entries) == 1
    assert outcome.stop_reason == "token-budget"


def test_unreachable_llm_stops_without_storing(tmp_path):
    task = resolve_task(fx.write_task(tmp_path), size="smoke")
    with ScriptedLLMServer(lambda req: fx.CORRECT, fail_first=[500] * 100) as server:
        opts = _options(server.base_url, tmp_path, rounds=3, samples=2)
        backend = OpenAIBackend(server.base_url, "scripted", max_retries=1, backoff_s=0.01, parallel=2)
        outcome = search(task, opts, store=Store(tmp_path / "s.db"), judge_config=JudgeConfig.quick(), backend=backend)
    assert outcome.stop_reason == "llm-unavailable"
    assert outcome.entries == [] and outcome.request_failures == 2
    assert len(server.requests) == 4  # 2 samples x (1 try + 1 retry), then the loop stops


@pytest.mark.slow
def test_compile_error_of_a_real_build_reaches_the_next_prompt(tmp_path):
    """A C++ load_inline candidate that does not compile: the compiler's error line, from the
    real judge, is in the lineage's next prompt."""
    cpp = fx.answer('''import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_source = """
#include <torch/extension.h>
torch::Tensor relu_forward(torch::Tensor x) {
    return undefined_relu_kernel(x);
}
"""
ext = load_inline(name="cudal1_test_broken_relu", cpp_sources=cpp_source, functions=["relu_forward"])


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return ext.relu_forward(x)
''')
    task = resolve_task(fx.write_task(tmp_path), size="smoke")
    with ScriptedLLMServer(Script([cpp], later=fx.MALFORMED)) as server:
        opts = _options(server.base_url, tmp_path, rounds=2, samples=1)
        outcome = search(task, opts, store=Store(tmp_path / "s.db"), judge_config=JudgeConfig.quick())
        prompts = search_prompts(server)
    assert outcome.entries[0].verdict.verdict == "build_error"
    assert len(prompts) == 2
    assert "main.cpp" in prompts[1] and "'undefined_relu_kernel' was not declared" in prompts[1].replace("‘", "'").replace("’", "'")


def test_wall_time_stops_between_rounds(tmp_path):
    import time

    task = resolve_task(fx.write_task(tmp_path), size="smoke")

    def slow(req):
        time.sleep(0.4)
        return fx.MALFORMED

    with ScriptedLLMServer(slow) as server:
        opts = _options(server.base_url, tmp_path, rounds=5, samples=1, wall_time_s=0.2)
        outcome = search(task, opts, store=Store(tmp_path / "s.db"), judge_config=JudgeConfig.quick())
    assert outcome.stop_reason == "wall-time" and outcome.rounds_done == 1 and len(server.requests) == 1
