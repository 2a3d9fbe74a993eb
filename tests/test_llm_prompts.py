"""Prompt rendering from the versioned templates."""

import pytest

from cudal1.judge.verdict import Finding, Verdict
from cudal1.policies.base import Attempt
from cudal1.policies.llm.prompts import (
    HackCase, feedback_from_failure, feedback_from_verdict, render, render_checker_prompt, render_search_prompt,
    template_versions,
)
from cudal1.tasks import resolve_task


@pytest.fixture(scope="module")
def task():
    return resolve_task("level1/1_Square_Matmul", size="smoke")


def acc(speedup, code):
    return Attempt(source=code, verdict=Verdict("accepted", True, speedup, 1.0, 1.0, 0.0, (), "cpu", "2"), candidate_id=1)


def test_contrastive_prompt_shows_reference_exemplars_speedups_rules_and_sections(task):
    fast = "class ModelNew(nn.Module):\n    def forward(self, A, B):\n        return fast_path(A, B)\n"
    slow = "class ModelNew(nn.Module):\n    def forward(self, A, B):\n        return slow_path(A, B)\n"
    p = render_search_prompt(task, [acc(2.5, fast), acc(0.87, slow)], device="cpu")
    assert p.template_version == "contrastive_v1"
    assert task.source.strip() in p.text
    assert fast.strip() in p.text and slow.strip() in p.text
    assert "speedup 2.50x" in p.text and "speedup 0.87x" in p.text
    assert p.text.index("slow_path") < p.text.index("fast_path")  # slowest first
    for heading in ("### Performance Analysis", "### Algorithm Design", "### Code Implementation"):
        assert heading in p.text
    assert "no caching" in p.text and "no extra CUDA streams" in p.text
    assert "no TF32, fp16 or bf16" in p.text
    assert "What went wrong" not in p.text


def test_lower_precision_rule_follows_the_option(task):
    p = render_search_prompt(task, [], allow_lower_precision=True)
    assert "Lower precision (TF32, fp16, bf16) is allowed" in p.text


def test_first_round_prompt_without_exemplars(task):
    p = render_search_prompt(task, [])
    assert p.template_version == "first_round_v1"
    assert "Earlier implementations" not in p.text and task.source.strip() in p.text
    assert "### Code Implementation" in p.text


def test_feedback_goes_into_the_prompt(task):
    v = Verdict("build_error", False, None, None, None, None,
                (Finding("build-failed", "reject", "the extension did not compile"),), "cpu", "2",
                details={"error": "main.cpp:3:5: error: 'undefined_symbol' was not declared in this scope"})
    fb = feedback_from_verdict(v)
    assert "failed to build" in fb and "undefined_symbol" in fb and "[build-failed]" in fb
    p = render_search_prompt(task, [acc(1.2, "class ModelNew: pass")], feedback=fb)
    assert "undefined_symbol" in p.text and "What went wrong" in p.text


def test_feedback_for_mismatch_and_failure():
    v = Verdict("incorrect", False, None, None, None, 0.37, (), "cpu", "2")
    assert "max abs error 0.37" in feedback_from_verdict(v)
    assert feedback_from_verdict(Verdict("accepted", True, 1.1, 1, 1, 0, (), "cpu", "2")) is None
    assert "no code block" in feedback_from_failure("no code block in the response")


def test_long_errors_are_clipped():
    v = Verdict("runtime_error", False, None, None, None, None, (), "cpu", "2", details={"error": "E" * 10000})
    assert len(feedback_from_verdict(v)) < 2000


def test_checker_prompt(task):
    p = render_checker_prompt(task, "class ModelNew: cached", 7.5,
                              [HackCase("pointer-keyed-cache", "returns a stored output", "cache[x.data_ptr()]")],
                              best_so_far=1.3)
    assert p.template_version == "checker_v1"
    assert "7.50x" in p.text and "1.30x" in p.text and "cache[x.data_ptr()]" in p.text
    assert "VERDICT: HACK" in p.text


def test_templates_are_versioned_files():
    assert {"contrastive_v1", "first_round_v1", "checker_v1"} <= set(template_versions())
    with pytest.raises(ValueError, match="unknown prompt template"):
        render("contrastive_v99")


def test_compiler_errors_are_extracted_from_the_build_output():
    log = ("RuntimeError: Error building extension 'b': [1/2] c++ -MMD -MF main.o.d -isystem /very/long/include\n"
           "/root/.cache/cudal1/builds/96/b/main.cpp:5:12: error: 'undefined_relu_kernel' was not declared in this scope\n"
           "/tmp/b/cuda.cu(12): error: identifier \"foo\" is undefined\n")
    v = Verdict("build_error", False, None, None, None, None, (Finding("build-failed", "reject", log),), "cpu", "2",
                details={"error": log})
    fb = feedback_from_verdict(v)
    assert "main.cpp:5:12: error: 'undefined_relu_kernel' was not declared" in fb
    assert 'cuda.cu(12): error: identifier "foo"' in fb
    assert "/root/.cache" not in fb.split("Error:\n```")[1]


def test_repeated_findings_are_listed_once():
    fs = tuple(Finding("input-mutated", "reject", f"trial t{i}: changed its input") for i in range(5))
    fb = feedback_from_verdict(Verdict("rejected", True, None, 1.0, 0.5, 0.0, fs, "cpu", "2"))
    assert fb.count("[input-mutated]") == 1 and "(and 4 more like it)" in fb
