"""A torch.compile candidate is judged like any other: torch's own lazy re-wrapping of
functions, inductor's idle pool threads and its compile workers are not findings."""

from __future__ import annotations

import pytest

from judge_helpers import RELU_TASK, judge


@pytest.mark.slow
def test_torch_compile_candidate_accepted_without_false_findings(judge_cache):
    v = judge(RELU_TASK, """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = torch.compile(lambda x: torch.relu(x) * 2.0)
    def forward(self, x):
        return self.f(x)
""", judge_cache, run_timeout_s=600)
    assert v.verdict == "accepted", v.to_record()
    assert not [f for f in v.findings if f.severity == "reject"]
