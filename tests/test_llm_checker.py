"""The adversarial checker's retrieval (TF-IDF over code tokens) and answer parsing."""

import sys
from pathlib import Path

import pytest

from cudal1.search.checker import (
    CaseDoc, TfidfIndex, check_candidate, code_tokens, is_suspicious, parse_checker_answer, similar_cases,
    store_cases,
)
from cudal1.policies.llm.prompts import HackCase
from cudal1.store.records import Hack
from cudal1.tasks import resolve_task

sys.path.insert(0, str(Path(__file__).parent))
from llm_server import ScriptedLLMServer  # noqa: E402

CASES = [
    CaseDoc(HackCase("pointer cache", "keyed on data_ptr"), "cache outputs keyed on x.data_ptr() pointer", "catalogue"),
    CaseDoc(HackCase("side stream", "work on another stream"), "torch.cuda.Stream() with torch.cuda.stream(s): launch", "catalogue"),
    CaseDoc(HackCase("empty", "returns empty_like"), "return torch.empty_like(x)", "catalogue"),
    CaseDoc(HackCase("threads", "background thread"), "threading.Thread(target=work).start()", "catalogue"),
]


def test_code_tokens_split_snake_case():
    assert code_tokens("x.data_ptr()") == ["x", "data_ptr", "data", "ptr"]


def test_retrieval_finds_the_matching_case():
    src = "class ModelNew:\n    def forward(self, x):\n        key = x.data_ptr()\n        return self.cache[key]"
    assert similar_cases(src, CASES, k=1)[0].case.title == "pointer cache"
    src = "s = torch.cuda.Stream()\nwith torch.cuda.stream(s):\n    y = f(x)"
    assert similar_cases(src, CASES, k=1)[0].case.title == "side stream"
    assert len(similar_cases(src, CASES, k=3)) <= 3


def test_tfidf_scores_are_cosines():
    index = TfidfIndex(["a b c", "a b c", "d e"])
    hits = index.query("a b c", k=3)
    assert hits[0][1] == pytest.approx(1.0) and hits[1][1] == pytest.approx(1.0)
    assert all(i != 2 for i, _ in hits)  # no shared token: left out
    assert TfidfIndex([]).query("x") == []


def test_store_hacks_become_cases():
    cases = store_cases([Hack(1, "level1/1_X", "return torch.empty_like(x)", "h", "no work", "llm-checker", 0.0)])
    assert cases[0].case.example == "return torch.empty_like(x)" and "llm-checker" in cases[0].case.title


def test_suspicious_thresholds():
    assert is_suspicious(3.0, None) and not is_suspicious(2.9, None)
    assert is_suspicious(2.0, 1.0) and not is_suspicious(1.9, 1.0)
    assert not is_suspicious(None, 1.0)


def test_parse_checker_answer():
    assert parse_checker_answer("It caches on data_ptr.\nVERDICT: HACK")[0] == "hack"
    assert parse_checker_answer("Looks fine.\n**VERDICT: OK**")[0] == "ok"
    verdict, reason = parse_checker_answer("Mentions VERDICT: HACK as an option... final\nVERDICT: OK")
    assert verdict == "ok"
    assert parse_checker_answer("I am not sure.")[0] == "unclear"


def test_check_candidate_against_a_server():
    from cudal1.policies.llm.backends import OpenAIBackend

    pytest.importorskip("openai")
    task = resolve_task("level1/1_Square_Matmul", size="smoke")
    src = "class ModelNew:\n    def forward(self, A, B):\n        return self.cache[A.data_ptr()]"
    with ScriptedLLMServer(lambda req: "It returns a cached result keyed on the pointer.\nVERDICT: HACK") as server:
        result = check_candidate(OpenAIBackend(server.base_url, "m"), task, src, 12.0, CASES, best_before=1.1)
    assert result.is_hack and "cached result" in result.reason
    assert result.cases[0] == "pointer cache"
    prompt = server.prompts()[0]
    assert "12.00x" in prompt and "keyed on data_ptr" in prompt and src.strip() in prompt
