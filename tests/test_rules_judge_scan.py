"""Every rewrite's candidate passes the judge's static scan: a helper that, say, looked a
function up by a computed name would be rejected as a dynamic attribute before it ran."""

from __future__ import annotations

import pytest
from rules_fixtures import rules_candidate
from test_rules_commute import BN, POOLS, REPEATED, TRANSITION
from test_rules_library import CAUSAL, NORM
from test_rules_linalg import AFFINE, CHAIN, CSE, MATMUL_BIAS, PATCHES, RELU_ATTENTION, SHAPES, WEIGHT_FACTORS
from test_rules_structure import FIRE, IDENTITY_POOLS, INCEPTION

from cudal1.judge.catalogue import scan_source


@pytest.mark.parametrize("task", [CAUSAL, NORM, BN, POOLS, REPEATED, TRANSITION, AFFINE, CHAIN, CSE, MATMUL_BIAS, SHAPES,
                                  WEIGHT_FACTORS, RELU_ATTENTION, PATCHES, INCEPTION, FIRE, IDENTITY_POOLS],
                         ids=lambda t: t.name)
def test_candidates_pass_the_static_scan(task):
    findings = scan_source(rules_candidate(task).source)
    assert not [f.id for f in findings if f.severity == "reject"]
