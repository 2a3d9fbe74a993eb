"""Comparing a candidate's outputs with the reference's, outside the candidate's process."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Comparison:
    ok: bool
    max_abs_error: float | None = None
    strict_ok: bool = True
    problems: list[tuple[str, str]] = field(default_factory=list)  # (finding id, message)


def _poison_mask(t: torch.Tensor) -> torch.Tensor | None:
    """Elements whose bits are exactly the judge's poison pattern (all ones)."""
    if t.dtype == torch.float32:
        return t.view(torch.int32) == -1
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16) == -1
    if t.dtype == torch.float64:
        return t.view(torch.int64) == -1
    return None


def compare_leaves(ref_infos, ref_vals, cand_infos, cand_vals, atol: float, rtol: float, strict: float, label: str) -> Comparison:
    """Compare flattened outputs. NaN positions of the reference compare equal; a NaN/inf where
    the reference is finite fails."""
    c = Comparison(ok=True, max_abs_error=0.0)
    if len(ref_infos) != len(cand_infos):
        c.ok = False
        c.problems.append(("output-shape-mismatch", f"{label}: {len(cand_infos)} outputs, the reference returns {len(ref_infos)}"))
        return c
    for i, (ri, rv, ci, cv) in enumerate(zip(ref_infos, ref_vals, cand_infos, cand_vals)):
        name = f"{label}, output {i}"
        if rv is None:  # the reference returned a non-tensor: compare its repr
            if ri.get("value") != ci.get("value"):
                c.ok = False
                c.problems.append(("output-mismatch", f"{name}: {ci.get('value')!r} != {ri.get('value')!r}"))
            continue
        if not ci.get("exact"):
            c.ok = False
            c.problems.append(("output-not-tensor", f"{name}: returned {ci.get('type')}, not exactly torch.Tensor" +
                               (f" ({ci['error']})" if ci.get("error") else "")))
            continue
        if cv is None:
            c.ok = False
            c.problems.append(("output-not-tensor", f"{name}: has no real storage"))
            continue
        if list(cv.shape) != list(rv.shape):
            c.ok = False
            c.problems.append(("output-shape-mismatch", f"{name}: shape {list(cv.shape)}, expected {list(rv.shape)}"))
            continue
        if cv.dtype != rv.dtype:
            c.ok = False
            c.problems.append(("output-dtype-mismatch", f"{name}: dtype {cv.dtype}, expected {rv.dtype}"))
            continue
        if ci.get("device", "").split(":")[0] != ri.get("device", "").split(":")[0]:
            c.ok = False
            c.problems.append(("output-device-mismatch", f"{name}: on {ci.get('device')}, expected {ri.get('device')}"))
            continue
        _compare_values(c, rv, cv, atol, rtol, strict, name)
    return c


def _compare_values(c: Comparison, rv: torch.Tensor, cv: torch.Tensor, atol, rtol, strict, name):
    if not (rv.is_floating_point() or rv.is_complex()):
        if not torch.equal(rv, cv):
            c.ok = False
            c.strict_ok = False
            bad = int((rv != cv).sum())
            c.problems.append(("output-mismatch", f"{name}: {bad} of {rv.numel()} values differ"))
        return
    # float32 arithmetic is exact enough here (differences carry ~1e-7 relative error, far
    # below the tightest tolerance checked) and twice as fast as float64 on large outputs.
    r, x = _wide(rv), _wide(cv)
    ref_nan = torch.isnan(r)
    considered = ~ref_nan
    ref_finite = torch.isfinite(r)
    cand_bad = ~torch.isfinite(x) & ref_finite
    if bool(cand_bad.any()):
        c.ok = False
        c.strict_ok = False
        poisoned = _poison_mask(cv)
        if poisoned is not None and bool((poisoned & ref_finite).any()):
            n = int((poisoned & ref_finite).sum())
            c.problems.append(("unwritten-output", f"{name}: {n} values still hold the judge's poison pattern (memory never written)"))
        else:
            c.problems.append(("nonfinite-output", f"{name}: {int(cand_bad.sum())} NaN/inf values where the reference is finite"))
        return
    inf_ref = torch.isinf(r)
    if bool(inf_ref.any()) and not torch.equal(r[inf_ref], x[inf_ref]):
        c.ok = False
        c.strict_ok = False
        c.problems.append(("output-mismatch", f"{name}: infinite values differ from the reference's"))
        return
    fin = considered & ref_finite
    if not bool(fin.any()):
        return
    diff = (x[fin] - r[fin]).abs()
    err = float(diff.max())
    c.max_abs_error = max(c.max_abs_error or 0.0, err)
    bound = atol + rtol * r[fin].abs()
    over = diff > bound
    if bool(over.any()):
        c.ok = False
        worst = int(torch.argmax(diff - bound))
        c.problems.append(("output-mismatch", f"{name}: {int(over.sum())} of {int(fin.sum())} values outside atol={atol:g}, rtol={rtol:g} "
                           f"(max abs error {err:.3g}; worst: {float(x[fin][worst]):.6g} vs {float(r[fin][worst]):.6g})"))
    if bool((diff > strict + strict * r[fin].abs()).any()):
        c.strict_ok = False


def _wide(t: torch.Tensor) -> torch.Tensor:
    if t.is_complex() or t.dtype in (torch.float32, torch.float64):
        return t
    return t.float()


def compare_samples(ref_samples: list, cand_samples: list, atol: float, rtol: float) -> tuple[int, int]:
    """Sampled outputs of timed calls: returns (calls checked, calls that disagree)."""
    bad = 0
    for rs, cs in zip(ref_samples, cand_samples):
        for r, x in zip(rs, cs):
            if r is None:
                continue
            if x is None or x.shape != r.shape:
                bad += 1
                break
            r64, x64 = r.double(), x.double()
            nan = torch.isnan(r64)
            if bool((~torch.isfinite(x64) & torch.isfinite(r64)).any()):
                bad += 1
                break
            fin = torch.isfinite(r64) & ~nan
            if bool(((x64[fin] - r64[fin]).abs() > atol + rtol * r64[fin].abs()).any()):
                bad += 1
                break
    return len(ref_samples), bad
