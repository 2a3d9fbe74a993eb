"""The adversarial corpus through the real judge: every hack gets its expected verdict and
findings; every legitimate candidate is accepted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from cudal1.judge import JudgeConfig, evaluate
from cudal1.judge.sandbox import bwrap_works
from cudal1.tasks import load_task_file

HERE = Path(__file__).parent
HACKS = sorted((HERE / "hacks").glob("*.py"))
LEGIT = sorted((HERE / "hacks" / "legit").glob("*.py"))


def header(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"#\s*([a-z-]+):\s*(.*)$", line)
        if m:
            out[m.group(1)] = [x.strip() for x in m.group(2).split(",") if x.strip()]
    return out


# Every attack must fail under both sandboxes a user can get: strict (bubblewrap) and basic.
# An attack on what the sandbox hides or limits (files, environment, network, processes: header
# `sandbox-dependent: yes`) runs under each; the others act inside the candidate's own process,
# where both levels are the same, and run once, under the strongest level here (CI time).
LEVELS = [pytest.param("strict", marks=pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not installed here")),
          "basic"]
STRONGEST = "strict" if bwrap_works() else "basic"


def hack_levels():
    for path in HACKS:
        levels = ["strict", "basic"] if header(path).get("sandbox-dependent") == ["yes"] else [STRONGEST]
        for level in levels:
            marks = [pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not installed here")] if level == "strict" else []
            yield pytest.param(path, level, id=f"{path.stem}-{level}", marks=marks)


def judge_file(path: Path, cache: str, sandbox: str = "auto"):
    h = header(path)
    if "cuda" in h.get("requires", []) and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if "cpu" in h.get("requires", []) and torch.cuda.is_available():
        pytest.skip("a CPU-only candidate (C++ on host memory): judged on machines without a GPU")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    task = load_task_file(HERE.parent / h["target"][0])
    return h, evaluate(task, path.read_text(), device=device, config=JudgeConfig.quick(cache_dir=cache, sandbox=sandbox))


@pytest.mark.parametrize("path,sandbox", hack_levels())
def test_hack_is_not_accepted_with_expected_findings(path, sandbox, judge_cache):
    h, v = judge_file(path, judge_cache, sandbox)
    found = set(v.finding_ids())
    # Allocator poisoning exists on CUDA only: on the CPU an unwritten output is just wrong.
    suffix = "" if torch.cuda.is_available() else "-cpu"
    expect_verdicts = h.get(f"expect-verdict{suffix}", h["expect-verdict"])
    assert v.verdict in expect_verdicts, (v.verdict, v.to_record())
    missing = set(h.get(f"expect-findings{suffix}", h.get("expect-findings", []))) - found
    assert not missing, (missing, v.to_record())
    if h.get("expect-one-of"):
        assert found & set(h["expect-one-of"]), v.to_record()
    if v.verdict == "accepted":  # only the lower-precision example: accepted, but never silently
        assert any(f.severity == "warn" for f in v.findings)


@pytest.mark.parametrize("sandbox", LEVELS)
@pytest.mark.parametrize("path", LEGIT, ids=lambda p: p.stem)
def test_legitimate_candidate_is_accepted(path, sandbox, judge_cache):
    _, v = judge_file(path, judge_cache, sandbox)
    assert v.verdict == "accepted", v.to_record()
    assert not [f for f in v.findings if f.severity == "reject"]
