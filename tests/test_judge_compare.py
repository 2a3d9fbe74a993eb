"""compare_values: the value checks of one output, with and without non-finite values (the
all-finite path works on flat views, the other on masked copies; both must say the same)."""

from __future__ import annotations

import math

import pytest
import torch

from cudal1.judge.compare import Comparison, compare_values

ATOL = RTOL = 1e-4
STRICT = 1e-5


def check(ref, got, r64=None) -> Comparison:
    c = Comparison(max_abs_error=0.0)
    compare_values(c, ref, got, ATOL, RTOL, STRICT, "out", r64)
    return c


def test_close_values_pass_and_report_their_error():
    ref = torch.randn(64, 32)
    c = check(ref, ref + 1e-6)
    assert c.ok and c.problems == [] and c.max_abs_error == pytest.approx(1e-6, rel=0.05) and c.strict_ok


@pytest.mark.parametrize("with_inf", [False, True], ids=["finite", "with-inf"])
def test_a_mismatch_names_its_worst_value_in_2d(with_inf):
    ref = torch.arange(12.0).reshape(3, 4)
    if with_inf:
        ref[0, 0] = math.inf
    got = ref.clone()
    got[2, 1] = 100.0  # expected 9
    c = check(ref, got)
    (fid, message), = c.problems
    assert fid == "output-mismatch" and not c.ok
    assert f"1 of {11 if with_inf else 12} values outside" in message and "worst: 100 vs 9" in message


def test_nan_where_the_reference_is_finite_is_nonfinite_output():
    ref = torch.ones(4, 4)
    got = ref.clone()
    got[1, 2] = math.nan
    (fid, message), = check(ref, got).problems
    assert fid == "nonfinite-output" and message.startswith("out: 1 NaN/inf values")


def test_nonfinite_values_where_the_reference_has_them_are_compared_as_such():
    ref = torch.tensor([[1.0, math.inf], [math.nan, -math.inf]])
    assert check(ref, ref.clone()).ok
    wrong_sign = ref.clone()
    wrong_sign[0, 1] = -math.inf
    assert check(ref, wrong_sign).problems[0][0] == "output-mismatch"
    assert check(torch.full((2,), math.nan), torch.full((2,), math.nan)).ok  # nothing finite to compare


def test_float64_evaluation_is_the_yardstick_when_it_agrees():
    ref = torch.randn(1000)
    r64 = ref.double() + 2e-7  # the float32 reference's own error
    c = check(ref, ref.clone(), r64)
    assert c.ok and c.ref_err == pytest.approx(2e-7, rel=0.01)


def test_a_constant_output_near_values_far_below_atol_is_caught():
    ref = 1e-6 * torch.randn(64, 64)  # every value within atol of 0
    (fid, message), = check(ref, torch.zeros_like(ref)).problems
    assert fid == "output-mismatch" and "barely vary" in message


def test_empty_and_integer_outputs():
    assert check(torch.empty(0, 3), torch.empty(0, 3)).ok
    assert check(torch.arange(5), torch.arange(5)).ok
    assert check(torch.arange(5), torch.arange(5) + 1).problems[0][0] == "output-mismatch"
