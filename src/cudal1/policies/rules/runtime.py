"""Helpers that generated candidates call; their source is copied verbatim into candidate files
(see `helper_source`), so what the tests run here is exactly what the judge runs."""

from __future__ import annotations

import inspect
import textwrap

import torch


class _PinnedShapes:
    """Values the interval analysis proved constant, built with the right shape and dtype.

    A pinned value's shape depends only on the input shapes, never on their values, so the
    original graph (``shapes_fn``) runs once per input signature (the first call with new
    shapes) and only the shapes and dtypes it produced are kept. Every call then returns a
    freshly filled tensor."""

    def __init__(self, model, shapes_fn):
        self.model = model
        self.shapes_fn = shapes_fn
        self.by_signature = {}

    def full(self, inputs, index, value):
        key = tuple((tuple(a.shape), a.dtype, a.device) if isinstance(a, torch.Tensor) else ("value", a) for a in inputs)
        specs = self.by_signature.get(key)
        if specs is None:
            with torch.no_grad():
                specs = [(tuple(v.shape), v.dtype) for v in self.shapes_fn(self.model, *inputs)]
            self.by_signature[key] = specs
        shape, dtype = specs[index]
        device = next(a.device for a in inputs if isinstance(a, torch.Tensor))
        return torch.full(shape, value, dtype=dtype, device=device)


class _WeightValues:
    """Values computed from the weights alone, kept while the weights stay the same.

    Kept values are reused only if every weight is the very tensor seen before, with the same
    version counter (bumped by each in-place write: ``load_state_dict``, optimizer steps), device,
    dtype and shape (other arguments: the same value); otherwise they are computed again. While
    autograd records and a weight requires grad, they are computed on every call so that
    gradients reach the weights."""

    def __init__(self, fn):
        self.fn = fn
        self.weights = ()
        self.state = ()
        self.values = None

    def get(self, weights):
        if torch.is_grad_enabled() and any(isinstance(w, torch.Tensor) and w.requires_grad for w in weights):
            return self.fn(*weights)
        state = tuple((w._version, w.device, w.dtype, tuple(w.shape)) if isinstance(w, torch.Tensor) else ("value", w)
                      for w in weights)
        same = len(weights) == len(self.weights) and all(a is b for a, b in zip(weights, self.weights))
        if not same or state != self.state or self.values is None:
            self.values = self.fn(*weights)
            self.weights, self.state = tuple(weights), state
        return self.values


def helper_source(obj) -> str:
    return textwrap.dedent(inspect.getsource(obj))


def _causal_attention(q, k, v, masked, scale):
    """softmax((q @ k^T) * scale, with the positions where ``masked`` is True at -inf) @ v.

    When ``masked`` marks exactly the positions above the diagonal (a causal mask; checked on
    every call, O(L^2) against O(L^2 * d) for the attention itself) this is torch's fused causal
    attention, which gives NaN exactly where the written form does (a NaN or inf key above the
    diagonal stays masked). Any other mask runs the written form."""
    L, S = q.shape[-2], k.shape[-2]
    if L == S and masked.dtype == torch.bool and masked.numel() == L * S and tuple(masked.shape[-2:]) == (L, S):
        causal = torch.ones(L, S, dtype=torch.bool, device=masked.device).triu_(1)
        if torch.equal(masked.reshape(L, S), causal):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    scores = (q @ k.transpose(-2, -1)) * scale
    return torch.softmax(scores.masked_fill(masked, float("-inf")), dim=-1) @ v


def _fold_batch_norm(weight, bias, running_mean, running_var, bn_weight, bn_bias, eps):
    """A convolution's (or linear layer's) weight and bias with an eval-mode BatchNorm after it
    folded in: BN(y) = (y - mean) * gamma / sqrt(var + eps) + beta per output channel."""
    scale = torch.rsqrt(running_var + eps)
    if bn_weight is not None:
        scale = scale * bn_weight
    shift = -running_mean * scale if bias is None else (bias - running_mean) * scale
    if bn_bias is not None:
        shift = shift + bn_bias
    return weight * scale.reshape(-1, *([1] * (weight.dim() - 1))), shift


def _layer_batch_norm(x, layer, bn, kept):
    """``bn(layer(x))``; with the BatchNorm in eval mode and keeping running statistics, one
    layer call with the BatchNorm folded into its weights (``kept``, a `_WeightValues` of
    `_fold_batch_norm`, recomputes them when a weight or statistic changes). In training mode
    the BatchNorm normalizes with the batch's statistics and updates its own: the two calls run
    as written."""
    if bn.training or not bn.track_running_stats or bn.running_mean is None:
        return bn(layer(x))
    w, b = kept.get((layer.weight, layer.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps))
    if isinstance(layer, torch.nn.Linear):
        return torch.nn.functional.linear(x, w, b)
    return layer._conv_forward(x, w, b)


def _fold_factor(weight, bias, factor, channel_dim):
    """``weight`` and ``bias`` times ``factor`` (one value, or one per output channel, which is
    dim ``channel_dim`` of the weight), and whether every factor is finite."""
    f = factor.reshape(-1)
    shape = [1] * weight.dim()
    if f.numel() > 1:
        shape[channel_dim] = -1
    return weight * f.reshape(shape), (bias * f if bias is not None else None), bool(torch.isfinite(factor).all())


def _layer_times_weight(x, fn_name, weight, bias, factor, kept, channel_dim, *rest):
    """``fn(x, weight, bias, *rest) * factor`` for a weight ``factor``; when every factor is
    finite, one layer call with it folded into the weights (``kept``, a `_WeightValues` of
    `_fold_factor`, recomputes them when a weight changes). An infinite factor times a layer
    output of 0 is NaN where the folded weights could not say so: then the written form runs."""
    F = torch.nn.functional
    fn = {"linear": F.linear, "conv1d": F.conv1d, "conv2d": F.conv2d, "conv3d": F.conv3d, "conv_transpose1d": F.conv_transpose1d,
          "conv_transpose2d": F.conv_transpose2d, "conv_transpose3d": F.conv_transpose3d}[fn_name]
    w, b, finite = kept.get((weight, bias, factor, channel_dim))
    if finite:
        return fn(x, w, b, *rest)
    return fn(x, weight, bias, *rest) * factor


def _fold_patch_linear(conv_weight, conv_bias, linear_weight, linear_bias, grid):
    """The one linear map that is a non-overlapping convolution (kernel = stride, no padding)
    on an input exactly ``grid`` = (rows, columns) patches large, flattened, then a linear
    layer: weight ``M[e, (c, i, a, j, b)] = sum_o L[e, (o, i, j)] K[o, c, a, b]`` over the
    input's flattened (channel, row, column) order, bias ``l + L @ repeat(k)``; and whether
    every weight is finite."""
    out_ch = conv_weight.shape[0]
    lw = linear_weight.reshape(linear_weight.shape[0], out_ch, *grid)
    weight = torch.einsum("eoij,ocab->eciajb", lw, conv_weight).reshape(linear_weight.shape[0], -1)
    bias = linear_bias
    if conv_bias is not None:
        shift = torch.einsum("eoij,o->e", lw, conv_bias)
        bias = shift if bias is None else bias + shift
    weights = [w for w in (conv_weight, conv_bias, linear_weight, linear_bias) if w is not None]
    return weight, bias, all(bool(torch.isfinite(w).all()) for w in weights)


def _patch_linear(x, conv, linear, kept, grid):
    """``linear(conv(x).flatten(1))`` for a patch convolution (`_fold_patch_linear`); while
    every weight is finite one linear layer on the flattened input, with the composed weights
    kept (``kept``, a `_WeightValues`, recomputes them when a weight changes). An infinite
    weight can turn the written form's inf into NaN or back: then the written form runs."""
    w, b, finite = kept.get((conv.weight, conv.bias, linear.weight, linear.bias, grid))
    if finite:
        return torch.nn.functional.linear(x.flatten(1), w, b)
    return linear(conv(x).flatten(1))
