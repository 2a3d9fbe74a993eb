"""Comparing a candidate's call with the reference's, in the parent process.

Standard: every element within ``atol + rtol * |expected|`` (and the tighter ``strict`` level
reported), where "expected" is the reference evaluated in float64 when the reference process
could do that, and the bound is widened by four times the reference's own float32 error against
it. So a sound reordering (a reassociated matrix chain, another summation order) passes even
where heavy cancellation makes every fp32 route wrong in the last digits, while a candidate that
is worse than the reference by more than that fails.

Degenerate outputs: when a constant (the outputs' mean) would pass the elementwise bound, that
bound cannot tell the right answer from a constant, zeros or values far below ``atol``. Then the
candidate's error (2-norm) must also stay below 1% of how much the expected outputs vary, or
1e-4 of their norm, or four times the reference's own error, whichever is largest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .protocol import INPUT_POISON_F32
from .transfer import CallRecord

REF_ERROR_FACTOR = 4.0


@dataclass
class Comparison:
    ok: bool = True
    max_abs_error: float | None = None
    strict_ok: bool = True
    # The reference's own float32 error against its float64 evaluation (0 without one): timed
    # calls have no float64 evaluation, so their strict check borrows this from the trials.
    ref_err: float = 0.0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (finding id, message)

    def fail(self, fid: str, message: str, strict_too: bool = True):
        self.ok = False
        self.strict_ok = self.strict_ok and not strict_too
        self.problems.append((fid, message))


def _bit_mask(t: torch.Tensor, pattern32: int) -> torch.Tensor | None:
    if t.dtype == torch.float32:
        return t.view(torch.int32) == pattern32
    return None


def _poison_mask(t: torch.Tensor) -> torch.Tensor | None:
    """Elements whose bits are exactly the allocator poison pattern (all ones)."""
    if t.dtype == torch.float32:
        return t.view(torch.int32) == -1
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16) == -1
    if t.dtype == torch.float64:
        return t.view(torch.int64) == -1
    return None


def compare_calls(ref: CallRecord, cand: CallRecord, atol: float, rtol: float, strict: float, label: str,
                  device: str = "cpu", strict_slack: float = 0.0) -> Comparison:
    """Structure, types, aliasing and values of one call's outputs; the arithmetic runs on
    ``device`` (the judge's GPU compares a 64 MB output in milliseconds, a CPU in a second).
    ``strict_slack`` widens the strict check of a call that has no float64 evaluation."""
    c = Comparison(max_abs_error=0.0)
    if len(ref.leaves) != len(cand.leaves) or ref.structure != cand.structure:
        c.fail("output-shape-mismatch", f"{label}: returned {len(cand.leaves)} output(s) shaped {cand.structure}, "
                                         f"the reference returns {len(ref.leaves)} shaped {ref.structure}")
        return c
    for i, (ri, rv, ci, cv) in enumerate(zip(ref.info, ref.leaves, cand.info, cand.leaves)):
        name = f"{label}, output {i}"
        if ri.kind == "value":  # the reference returned a non-tensor: compare its repr
            if ci.kind != "value" or ri.value != ci.value:
                c.fail("output-mismatch", f"{name}: {ci.value or ci.type!r} != {ri.value!r}")
            continue
        if ci.kind != "tensor" or not ci.exact or cv is None:
            c.fail("output-not-tensor", f"{name}: returned {ci.type}, not exactly torch.Tensor with real storage"
                   + (f" ({ci.error})" if ci.error else ""))
            continue
        if ci.aliases and not ri.aliases:
            c.fail("output-aliases-input", f"{name}: shares memory with its {ci.aliases}; the reference returns new memory")
            continue
        if list(cv.shape) != list(rv.shape):
            c.fail("output-shape-mismatch", f"{name}: shape {list(cv.shape)}, expected {list(rv.shape)}")
            continue
        if cv.dtype != rv.dtype:
            c.fail("output-dtype-mismatch", f"{name}: dtype {cv.dtype}, expected {rv.dtype}")
            continue
        if ci.device.split(":")[0] != ri.device.split(":")[0]:
            c.fail("output-device-mismatch", f"{name}: on {ci.device}, expected {ri.device}")
            continue
        r64 = ref.out64[i] if ref.out64 is not None and i < len(ref.out64) else None
        if device != "cpu":
            rv, cv, r64 = (t.to(device) if t is not None else None for t in (rv, cv, r64))
        compare_values(c, rv, cv, atol, rtol, strict, name, r64, strict_slack)
    return c


def compare_values(c: Comparison, rv: torch.Tensor, cv: torch.Tensor, atol: float, rtol: float, strict: float,
                   name: str, r64: torch.Tensor | None = None, strict_slack: float = 0.0):
    if not (rv.is_floating_point() or rv.is_complex()):
        if not torch.equal(rv, cv):
            c.fail("output-mismatch", f"{name}: {int((rv != cv).sum())} of {rv.numel()} values differ")
        return
    r, x = rv.to(torch.complex128 if rv.is_complex() else torch.float64), cv.to(torch.complex128 if cv.is_complex() else torch.float64)
    if r.numel() == 0:
        return
    ref_finite = torch.isfinite(r)
    # The usual case, every reference value finite, skips the masks (each a full copy of the output).
    all_finite = bool(ref_finite.all())
    cand_finite = torch.isfinite(x)
    if not bool(cand_finite.all()) and (all_finite or bool((~cand_finite & ref_finite).any())):
        cand_bad = ~cand_finite & ref_finite
        aliased = _bit_mask(cv, INPUT_POISON_F32)
        unwritten = _poison_mask(cv)
        if aliased is not None and bool((aliased & ref_finite).any()):
            c.fail("output-aliases-input", f"{name}: {int((aliased & ref_finite).sum())} values changed when the judge "
                                           "overwrote the inputs after the call (the output shares their memory)")
        elif unwritten is not None and bool((unwritten & ref_finite).any()):
            c.fail("unwritten-output", f"{name}: {int((unwritten & ref_finite).sum())} values still hold the judge's poison "
                                       "pattern (memory never written)")
        else:
            c.fail("nonfinite-output", f"{name}: {int(cand_bad.sum())} NaN/inf values where the reference is finite")
        return
    del cand_finite
    if not all_finite:
        inf_ref = torch.isinf(r)
        if bool(inf_ref.any()) and not torch.equal(r[inf_ref], x[inf_ref]):
            c.fail("output-mismatch", f"{name}: infinite values differ from the reference's")
            return
        if not bool(ref_finite.any()):
            return

    def finite(t: torch.Tensor) -> torch.Tensor:  # flat, like a mask's result
        return t.reshape(-1) if all_finite else t[ref_finite]

    expected, magnitude, ref_err = finite(r), None, 0.0
    if r64 is not None and r64.shape == rv.shape and not r.is_complex():
        e64 = finite(r64.to(torch.float64))
        if bool(torch.isfinite(e64).all()):
            abs_e64 = e64.abs()
            own = (expected - e64).abs_()
            # A float64 result far from the float32 one (a stochastic forward, say) is no yardstick.
            if bool((own <= abs_e64.mul(rtol).add_(atol)).all()):
                expected, magnitude, ref_err = e64, abs_e64, float(own.max())
    if magnitude is None:
        magnitude = expected.abs()
    c.ref_err = max(c.ref_err, ref_err)
    got = finite(x)
    diff = (got - expected).abs()
    err = float(diff.max())
    c.max_abs_error = max(c.max_abs_error or 0.0, err)
    slack = REF_ERROR_FACTOR * ref_err
    bound = magnitude.mul(rtol).add_(atol + slack)
    over = diff > bound
    if bool(over.any()):
        worst = int(torch.argmax(diff - bound))
        c.fail("output-mismatch", f"{name}: {int(over.sum())} of {expected.numel()} values outside atol={atol:g}, rtol={rtol:g} "
                                  f"(max abs error {err:.3g}; worst: {float(got[worst]):.6g} vs {float(expected[worst]):.6g})")
        return
    del over
    if bool((diff > magnitude.mul(strict).add_(strict + (slack if ref_err else strict_slack))).any()):
        c.strict_ok = False
    _degenerate_check(c, expected, got, bound, ref_err, name)


def _degenerate_check(c: Comparison, expected: torch.Tensor, got: torch.Tensor, bound: torch.Tensor, ref_err: float, name: str):
    if expected.is_complex() or expected.numel() < 2:
        return
    mean = expected.mean()
    if not bool(((expected - mean).abs() <= bound).all()):
        return  # the elementwise bound already tells a constant from the right answer
    variation = float((expected - mean).norm())
    allowed = max(0.01 * variation, 1e-4 * float(expected.norm()), REF_ERROR_FACTOR * ref_err * expected.numel() ** 0.5)
    miss = float((got - expected).norm())
    if miss > allowed:
        c.fail("output-mismatch", f"{name}: the expected values barely vary (a constant would pass atol), and the "
                                  f"outputs miss them by {miss:.3g} (2-norm), more than the {allowed:.3g} allowed "
                                  f"(1% of their variation {variation:.3g})")


def same_values(a: tuple, b: tuple) -> bool:
    """Bitwise-equal tensors (NaN equal to NaN), position by position."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if (x is None) != (y is None):
            return False
        if x is None:
            continue
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if x.is_floating_point() or x.is_complex():
            if not (torch.equal(torch.isnan(x), torch.isnan(y)) and torch.equal(torch.nan_to_num(x, nan=0.0), torch.nan_to_num(y, nan=0.0))):
                return False
        elif not torch.equal(x, y):
            return False
    return True


def fingerprints_differ(a, b) -> bool:
    """Input fingerprints ([sum, sum |x|] in float64) of the same inputs, from two processes."""
    if a is None or b is None or len(a) != len(b):
        return a != b
    for x, y in zip(a, b):
        if (x is None) != (y is None):
            return True
        if x is not None and any(not (p == q or abs(p - q) <= 1e-9 * max(1.0, abs(p), abs(q))) and not (p != p and q != q)
                                 for p, q in zip(x, y)):
            return True
    return False
