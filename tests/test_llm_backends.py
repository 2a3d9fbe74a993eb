"""LLM backends against a real local HTTP server (and a tiny local transformers model)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from llm_server import ScriptedLLMServer  # noqa: E402

pytest.importorskip("openai")
from cudal1.policies.llm.backends import (  # noqa: E402
    LLMUnavailable, OpenAIBackend, TokenBudget, make_backend,
)
from cudal1.search.options import LLMOptions  # noqa: E402

MSG = [{"role": "user", "content": "write a kernel"}]


def test_completion_text_and_usage():
    with ScriptedLLMServer(lambda req: "one two three") as server:
        backend = OpenAIBackend(server.base_url, "coder", backoff_s=0.01)
        c = backend.complete(MSG)
    assert c.ok and c.text == "one two three"
    assert (c.prompt_tokens, c.completion_tokens, c.finish_reason) == (3, 3, "stop")
    assert backend.budget.used == 6 and backend.budget.requests == 1
    assert server.requests[0]["model"] == "coder"
    assert server.requests[0]["messages"] == MSG


def test_retries_500_and_429_with_backoff():
    with ScriptedLLMServer(lambda req: "fine", fail_first=[500, 429, 503]) as server:
        backend = OpenAIBackend(server.base_url, "m", max_retries=4, backoff_s=0.01)
        c = backend.complete(MSG)
    assert c.ok and c.text == "fine"
    assert c.attempts == 4
    assert server.statuses == [500, 429, 503, 200]


def test_gives_up_after_max_retries():
    with ScriptedLLMServer(lambda req: "never", fail_first=[500] * 5) as server:
        backend = OpenAIBackend(server.base_url, "m", max_retries=2, backoff_s=0.01)
        c = backend.complete(MSG)
    assert not c.ok and "500" in c.error
    assert c.attempts == 3 and len(server.requests) == 3
    assert backend.budget.used == 0


def test_client_errors_are_not_retried():
    with ScriptedLLMServer(lambda req: "x", fail_first=[400]) as server:
        c = OpenAIBackend(server.base_url, "m", max_retries=3, backoff_s=0.01).complete(MSG)
    assert not c.ok and c.attempts == 1 and len(server.requests) == 1


def test_backoff_grows_exponentially():
    with ScriptedLLMServer(lambda req: "ok", fail_first=[429, 429, 429]) as server:
        backend = OpenAIBackend(server.base_url, "m", max_retries=3, backoff_s=0.05)
        import time

        t0 = time.perf_counter()
        assert backend.complete(MSG).ok
        elapsed = time.perf_counter() - t0
    # delays are base * 2**attempt * [0.5, 1): at least 0.025 + 0.05 + 0.1
    assert elapsed >= 0.175


def test_parallel_requests_keep_order():
    def responder(req):
        return "echo " + req["messages"][0]["content"]

    with ScriptedLLMServer(responder) as server:
        backend = OpenAIBackend(server.base_url, "m", parallel=4)
        out = backend.complete_many([[{"role": "user", "content": f"p{i}"}] for i in range(8)])
    assert [c.text for c in out] == [f"echo p{i}" for i in range(8)]
    assert backend.budget.requests == 8


def test_token_budget_refuses_further_requests():
    with ScriptedLLMServer(lambda req: "a b c d e") as server:
        backend = OpenAIBackend(server.base_url, "m", parallel=1, budget=TokenBudget(limit=12))
        out = backend.complete_many([MSG] * 4)
    assert [c.ok for c in out] == [True, True, False, False]  # 8 tokens each: the third would start past 12
    assert "token budget" in out[2].error
    assert len(server.requests) == 2


def test_api_key_comes_from_env_and_defaults_to_empty(monkeypatch):
    with ScriptedLLMServer(lambda req: "ok") as server:
        monkeypatch.delenv("CUDAL1_LLM_API_KEY", raising=False)
        assert OpenAIBackend(server.base_url, "m")._client.api_key == "EMPTY"
        monkeypatch.setenv("CUDAL1_LLM_API_KEY", "sk-secret")
        backend = OpenAIBackend(server.base_url, "m")
        assert backend._client.api_key == "sk-secret"
        c = backend.complete(MSG)
    assert "sk-secret" not in repr(c) and "sk-secret" not in str(c.usage())


def test_make_backend_needs_a_model_and_a_url():
    with pytest.raises(LLMUnavailable, match="--llm-model"):
        make_backend(LLMOptions())
    with pytest.raises(LLMUnavailable, match="--llm-base-url"):
        make_backend(LLMOptions(model="coder"))
    with pytest.raises(LLMUnavailable, match="no such folder"):
        make_backend(LLMOptions(model="hf:/nonexistent/model"))


def _tiny_hf_model(path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = ["<unk>", "<eos>", "class", "ModelNew", "def", "forward", "return", "x", "write", "a", "kernel", ":", "(", ")"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", pad_token="<eos>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    fast.save_pretrained(path)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(words), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                               eos_token_id=1, bos_token_id=1)).save_pretrained(path)


def test_local_transformers_backend(tmp_path):
    pytest.importorskip("transformers")
    _tiny_hf_model(tmp_path / "tiny")
    backend = make_backend(LLMOptions(model=f"hf:{tmp_path / 'tiny'}", max_tokens=6, temperature=0.9))
    out = backend.complete_many([MSG, MSG])
    for c in out:
        assert c.ok, c.error
        assert c.prompt_tokens == 3  # "write a kernel" through the chat template
        assert 1 <= c.completion_tokens <= 6
        assert c.finish_reason in ("stop", "length")
    assert backend.budget.requests == 2 and backend.budget.used == sum(c.total_tokens for c in out)
