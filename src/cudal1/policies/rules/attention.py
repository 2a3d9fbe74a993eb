"""Hand-written attention -> ``F.scaled_dot_product_attention``.

Read: ``softmax(scale * (q @ k.transpose(-2, -1)), dim=-1) @ v``, the scale a number applied to
the scores or to q (``* c`` or ``/ c``), optionally with ``.masked_fill(mask, -inf)`` on the
scores. Dropout between softmax and ``@ v`` must be gone (p = 0, `identity-dropout`); with p > 0
it draws random numbers and the pattern does not match.

Standard: **same function** -- the fused kernel computes the same softmax-weighted sums with
its own (tiled, online-rescaled) summation order, within float32 rounding; special values:

* no mask: a NaN or inf in q or k makes the row's scores non-finite and the row NaN in both;
* a mask: only a causal mask (True exactly above the diagonal, e.g. ``tril(ones) == 0``) is
  given to the fused kernel, as ``is_causal=True``: a NaN or inf key above the diagonal stays
  masked there, as in the written form (checked in the tests). Given as a boolean
  ``attn_mask`` instead, torch adds the mask to the scores and NaN + -inf spreads into rows the
  written form keeps finite; so the mask is checked when the candidate runs
  (`runtime._causal_attention`) and any other mask runs the written form. A finite fill value
  (-1e9) is a different function for fully masked rows and is not read.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch.nn.functional as F
from torch import fx

from .analysis import node_dtype, node_shape
from .codegen import Helper
from .formulas import Formula, Lazy, Match
from .graph_utils import arg, kind, module_of
from .patterns import binary, commuted, is_call, number, runtime_number, single_use
from .runtime import _causal_attention, helper_source



def _attention_shape(q, k, v, masked, scale):
    """What analysis runs on meta tensors for `runtime._causal_attention` (same shape and dtype)."""
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


CAUSAL_HELPER = Helper("_causal_attention", _attention_shape, helper_source(_causal_attention))


def _last_dim_softmax(p, gm):
    if not is_call(p, gm, "softmax") or not p.args or not single_use(p):
        return None
    mod = module_of(p, gm)
    dim = mod.dim if mod is not None else arg(p, 1, "dim")
    shape = node_shape(p)
    if mod is None and (len(p.args) > 2 or set(p.kwargs) - {"dim", "_stacklevel", "dtype"} or p.kwargs.get("dtype") is not None):
        return None  # a dtype: the softmax is computed in another precision
    if not isinstance(dim, int) or shape is None or dim % len(shape) != len(shape) - 1:
        return None
    return p.args[0]


def _transposed_last(kt, gm):
    """k when ``kt`` is k with its last two dims swapped (``transpose(-2, -1)``, any spelling)."""
    shape = node_shape(kt)
    if not is_call(kt, gm, "transpose") or kt.op == "call_module" or shape is None or len(kt.args) != 3 or kt.kwargs:
        return None
    nd = len(shape)
    d = kt.args[1:]
    if not all(isinstance(v, int) for v in d) or sorted(v % nd for v in d) != [nd - 2, nd - 1]:
        return None
    return kt.args[0]


@dataclass(frozen=True)
class Scale(Lazy):
    """The softmax scale: a number times runtime numbers, over runtime numbers."""

    factor: float
    times: tuple = ()
    over: tuple = ()

    def node(self, graph: fx.Graph):
        out, times = self.factor, list(self.times)
        if out == 1.0 and times:
            out = times.pop(0)
        for t in times:
            out = graph.call_function(operator.mul, (out, t))
        for t in self.over:
            out = graph.call_function(operator.truediv, (out, t))
        return out

    def __str__(self) -> str:
        parts = [f"{self.factor:.6g}"] + [f"* {t.name}" for t in self.times] + [f"/ {t.name}" for t in self.over]
        return " ".join(parts)


def _scaled(v, gm):
    """(value, `Scale`) for ``value * c`` / ``value / c``, c numbers or runtime numbers."""
    factor, times, over = 1.0, [], []
    while True:
        for a, c in commuted(v, gm, "mul"):
            if runtime_number(c, gm) and not runtime_number(a, gm):
                if number(c) is not None:
                    factor *= number(c)
                else:
                    times.append(c)
                v = a
                break
        else:
            ops = binary(v, gm, "truediv")
            if ops is None or not runtime_number(ops[1], gm) or number(ops[1]) == 0:
                break
            if number(ops[1]) is not None:
                factor /= number(ops[1])
            else:
                over.append(ops[1])
            v = ops[0]
    if not math.isfinite(factor) or factor == 0:
        return None
    return v, Scale(factor, tuple(times), tuple(over))


def attention(n, gm) -> Match | None:
    ops = binary(n, gm, "matmul") or binary(n, gm, "bmm")
    if ops is None:
        return None
    probs, v = ops
    scores = _last_dim_softmax(probs, gm)
    if scores is None:
        return None
    masked = None
    if is_call(scores, gm, "masked_fill") and scores.op != "call_module" and single_use(scores):
        if len(scores.args) != 3 or scores.kwargs or number(scores.args[2]) != -math.inf:
            return None
        scores, masked = scores.args[0], scores.args[1]
    if not single_use(scores):
        return None
    qk, scale = _scaled(scores, gm) or (None, None)
    ops = (binary(qk, gm, "matmul") or binary(qk, gm, "bmm")) if single_use(qk) else None
    if ops is None:
        return None
    q, kt = ops
    k = _transposed_last(kt, gm) if single_use(kt) else None
    if k is None:
        return None
    if single_use(q) and kind(q, gm) in ("mul", "truediv"):
        found = _scaled(q, gm)
        if found is not None:
            inner = found[1]
            q, scale = found[0], Scale(scale.factor * inner.factor, scale.times + inner.times, scale.over + inner.over)
    shapes = [node_shape(t) for t in (q, k, v)]
    if any(s is None or len(s) < 3 for s in shapes) or len({len(s) for s in shapes}) != 1:
        return None
    (sq, sk, sv) = shapes
    if sq[:-2] != sk[:-2] or sq[:-2] != sv[:-2] or sq[-1] != sk[-1] or sk[-2] != sv[-2]:
        return None
    if len({node_dtype(t) for t in (q, k, v)}) != 1 or not node_dtype(q).is_floating_point:
        return None
    if masked is None:
        return Match(F.scaled_dot_product_attention, (q, k, v), {"scale": scale},
                     detail=f"{n.name}: softmax(q k^T * {scale}) v is scaled_dot_product_attention")
    if node_dtype(masked) is not None and not str(node_dtype(masked)).endswith("bool"):
        return None
    return Match(CAUSAL_HELPER.fn, (q, k, v, masked, scale), helper=CAUSAL_HELPER,
                 detail=f"{n.name}: masked softmax(q k^T * {scale}) v is causal scaled_dot_product_attention "
                        "(mask checked when run)")


ATTENTION = (Formula("fused-attention", attention),)
