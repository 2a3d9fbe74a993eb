"""Written-out activations, softmax family, norms and attention rewritten to torch's fused
functions: each applied where it holds, matching the reference on random inputs and at +-inf /
NaN as its standard says, and not applied to look-alikes where it would not hold."""

from __future__ import annotations

import math
import os

import pytest
import torch
from rules_fixtures import make_task, rules_applied, rules_candidate, run_pair, scaled

os.environ.setdefault("OMP_NUM_THREADS", "1")

SPECIALS = torch.tensor([math.inf, -math.inf, math.nan, 1e30, -1e30, 3e38, -3e38, 0.0, -0.0, 30.0, -30.0, 100.0, -100.0, 3.0, -3.0])


def _activation_task(expr: str, name: str):
    return make_task(f"""
class Model(nn.Module):
    def forward(self, x):
        return {expr}
""", "[torch.randn(8, 37)]", name=name, extra="import math\n")


def with_specials(mod):
    """get_inputs() with the special values planted at the start of each row."""
    x = mod.get_inputs()[0].clone()
    x[:, : len(SPECIALS)] = SPECIALS
    return [x]


def assert_same_function(ref: torch.Tensor, new: torch.Tensor, rtol: float = 2e-6, atol: float = 1e-6):
    """Same NaN and infinity positions; finite values equal up to float32 rounding."""
    assert ref.shape == new.shape and ref.dtype == new.dtype
    assert torch.equal(torch.isnan(ref), torch.isnan(new))
    assert torch.equal(ref[torch.isinf(ref)], new[torch.isinf(ref)]) and torch.equal(torch.isinf(ref), torch.isinf(new))
    fin = torch.isfinite(ref)
    assert torch.allclose(ref[fin], new[fin], rtol=rtol, atol=atol)


ACTIVATIONS = [
    ("fused-silu", "x * torch.sigmoid(x)", "silu"),
    ("fused-silu", "torch.sigmoid(x) * x", "silu"),
    ("fused-mish", "x * torch.tanh(F.softplus(x))", "mish"),
    ("fused-mish", "torch.multiply(torch.tanh(torch.log1p(torch.exp(x))), x)", "mish"),
    ("fused-gelu", "0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))", "gelu"),
    ("fused-gelu", "x * 0.5 * (1 + torch.erf(x * 0.7071067811865476))", "gelu"),
    ("fused-gelu-tanh", "0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))", "gelu"),
    ("fused-gelu-tanh", "x * 0.5 * (1 + torch.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))", "gelu"),
    ("fused-hardswish", "x * torch.clamp((x + 3) / 6, 0, 1)", "hardswish"),
    ("fused-hardswish", "x * F.relu6(x + 3) / 6", "hardswish"),
    ("fused-hardswish", "x * F.hardsigmoid(x)", "hardswish"),
    ("fused-softplus", "torch.log(1 + torch.exp(x))", "softplus"),
]


@pytest.mark.parametrize("rule,expr,fn", ACTIVATIONS)
def test_written_activation_becomes_the_fused_function(rule, expr, fn):
    task = _activation_task(expr, "Act")
    assert rule in rules_applied(task)
    source = rules_candidate(task).source
    body = source.split("class ModelNew")[1]
    assert fn in body and "sigmoid(" not in body.replace("hardsigmoid", "") and "erf(" not in body
    for f in (None, scaled(30.0), with_specials):
        ref, new = run_pair(task, source, f)
        # softplus: log(1 + exp(x)) rounds to 0 below -16 where log1p keeps exp(x) (< 1e-7)
        assert_same_function(ref, new, atol=1e-6 if rule != "fused-softplus" else 2e-7)


LOOK_ALIKES = [
    "x * torch.sigmoid(2.0 * x)",                        # swish with beta 2 is not silu
    "x * torch.tanh(F.softplus(x, beta=2.0))",           # another softplus
    "x * torch.tanh(F.softplus(x, threshold=1.0))",      # softplus cut at 1: not mish's
    "0.5 * x * (1.0 + torch.erf(x / 2.0))",               # wrong constant
    "x * (1.0 + torch.erf(x / math.sqrt(2.0)))",          # the 0.5 missing
    "0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.05 * torch.pow(x, 3.0))))",
    "x * torch.sigmoid(x + 3) / 6",                      # KernelBench level2/58: not hardswish
    "x * torch.clamp(x + 3, 0, 6) / 5",
    "torch.log(2 + torch.exp(x))",
]


@pytest.mark.parametrize("expr", LOOK_ALIKES)
def test_look_alike_activations_are_left_alone(expr):
    assert not [r for r in rules_applied(_activation_task(expr, "LookAlike")) if r.startswith("fused-")]


def test_gelu_keeps_inf_where_torchs_cpu_gelu_gives_nan():
    """F.gelu on the CPU turns +inf into NaN in its vectorized path; the written form gives inf."""
    x = torch.full((16,), math.inf)
    assert torch.isnan(torch.nn.functional.gelu(x)).all()  # the reason for the where(x > 10, x, ...)
    task = _activation_task("0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))", "GeluInf")
    ref, new = run_pair(task, rules_candidate(task).source, lambda mod: [torch.full((4, 16), math.inf)])
    assert torch.equal(ref, new) and torch.isinf(new).all()


def _row_task(body: str, name: str, shape="(6, 33)"):
    return make_task(f"""
class Model(nn.Module):
    def forward(self, x):
{body}
""", f"[torch.randn{shape}]", name=name)


SOFTMAX = """        m = torch.amax(x, dim=-1, keepdim=True)
        e = torch.exp(x - m)
        return e / e.sum(dim=-1, keepdim=True)"""
SOFTMAX_MAX_VALUES = """        m = x.max(dim=1, keepdim=True)[0]
        e = torch.exp(x - m)
        return e / torch.sum(e, dim=1, keepdim=True)"""
LOG_SOFTMAX = """        m = x.max(dim=1, keepdim=True).values
        return x - m - torch.log(torch.exp(x - m).sum(dim=1, keepdim=True))"""
LOGSUMEXP = """        m = torch.amax(x, dim=-1, keepdim=True)
        return (m + torch.log(torch.sum(torch.exp(x - m), dim=-1, keepdim=True))) * 2.0"""


@pytest.mark.parametrize("rule,body,fn", [
    ("fused-softmax", SOFTMAX, "torch.softmax"),
    ("fused-softmax", SOFTMAX_MAX_VALUES, "torch.softmax"),
    ("fused-log-softmax", LOG_SOFTMAX, "torch.log_softmax"),
    ("fused-logsumexp", LOGSUMEXP, "torch.logsumexp"),
])
def test_written_row_functions_become_fused(rule, body, fn):
    task = _row_task(body, "Row")
    assert rule in rules_applied(task)
    source = rules_candidate(task).source
    assert fn in source.split("class ModelNew")[1] and "torch.exp" not in source.split("class ModelNew")[1]
    for f in (None, scaled(50.0)):
        ref, new = run_pair(task, source, f)
        assert_same_function(ref, new, rtol=1e-5, atol=1e-6)
    ref, new = run_pair(task, source, with_specials)  # rows with +-inf and NaN
    assert_same_function(ref, new, rtol=1e-5, atol=1e-6)

    def inf_rows(mod):  # a row with +inf, a row of -inf, a row with NaN
        x = mod.get_inputs()[0].clone()
        x[0, 3], x[1, :], x[2, 5] = math.inf, -math.inf, math.nan
        return [x]

    ref, new = run_pair(task, source, inf_rows)
    if rule == "fused-logsumexp":  # NaN-relaxed: torch gives +inf / -inf where the written form is NaN
        keep = ~torch.isnan(ref)
        assert not torch.isnan(new[keep]).any() and torch.allclose(ref[keep], new[keep])
        assert new[0, 0] == math.inf and new[1, 0] == -math.inf and torch.isnan(new[2, 0])
    else:
        assert_same_function(ref, new, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("body", [
    """        e = torch.exp(x)
        return e / e.sum(dim=-1, keepdim=True)""",  # no max subtracted: a row whose sum overflows gives 0
    """        m = torch.amax(x, dim=0, keepdim=True)
        e = torch.exp(x - m)
        return e / e.sum(dim=-1, keepdim=True)""",  # max over another dim than the sum
    """        return torch.log(torch.softmax(x, dim=-1))""",  # -inf where log_softmax is finite
    """        m = torch.amax(x, dim=-1, keepdim=True)
        return m + torch.log(torch.sum(torch.exp(x - m * 0.5), dim=-1, keepdim=True))""",
])
def test_row_look_alikes_are_left_alone(body):
    assert not [r for r in rules_applied(_row_task(body, "RowLookAlike")) if r.startswith("fused-")]


NORM = make_task("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 33))
        self.b = nn.Parameter(torch.randn(4, 33))
        self.g = nn.Parameter(torch.randn(33))

    def forward(self, x):
        mu = x.mean(dim=(-2, -1), keepdim=True)
        var = x.var(dim=(-2, -1), keepdim=True, unbiased=False)
        ln = (x - mu) / torch.sqrt(var + 1e-5) * self.w + self.b
        d = x - x.mean(-1, keepdim=True)
        inst = d * torch.rsqrt(d.pow(2).mean(-1, keepdim=True) + 1e-6)
        rms = x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + 1e-6) * self.g
        return ln, inst, rms
""", "[torch.randn(3, 4, 33)]", name="Norms")


def test_written_norms_become_layer_norm_and_rms_norm_with_their_weights():
    applied = rules_applied(NORM)
    assert applied.count("fused-layer-norm") == 2 and "fused-rms-norm" in applied and applied.count("norm-affine") == 2
    source = rules_candidate(NORM).source
    body = source.split("class ModelNew")[1]
    assert body.count("layer_norm(") == 2 and "rms_norm(" in body and "sqrt" not in body
    for f in (None, scaled(100.0)):
        ref, new = run_pair(NORM, source, f)
        for r, n in zip(ref, new):
            assert_same_function(r, n, rtol=1e-4, atol=1e-5)
    ref, new = run_pair(NORM, source, scaled(1.0, special=True))  # a row with inf and NaN: NaN in both
    for r, n in zip(ref, new):
        assert torch.equal(torch.isnan(r), torch.isnan(n))
        fin = torch.isfinite(r)
        assert torch.allclose(r[fin], n[fin], rtol=1e-4, atol=1e-5)


def test_norms_follow_the_input_shape():
    source = rules_candidate(NORM).source
    ref, new = run_pair(NORM, source, lambda mod: [torch.randn(2, 4, 33)])
    for r, n in zip(ref, new):
        assert torch.allclose(r, n, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("body", [
    "        d = x - x.mean(-1, keepdim=True)\n        return d / torch.sqrt(x.var(-1, keepdim=True) + 1e-5)",  # unbiased
    "        d = x - x.mean(-1, keepdim=True)\n        return d / (torch.sqrt(d.pow(2).mean(-1, keepdim=True)) + 1e-5)",  # eps outside
    "        d = x - x.mean(1, keepdim=True)\n        return d / torch.sqrt(d.pow(2).mean(1, keepdim=True) + 1e-5)",  # not trailing
    "        d = x - x.mean(-1, keepdim=True)\n        return d / torch.sqrt(d.pow(2).mean(1, keepdim=True) + 1e-5)",  # other axis
    "        return x / torch.sqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-6)",  # rms over a middle dim
])
def test_norm_look_alikes_are_left_alone(body):
    task = _row_task(body, "NormLookAlike", shape="(3, 4, 33)")
    assert not {"fused-layer-norm", "fused-rms-norm"} & set(rules_applied(task))


def _attention_task(mask: str, between: str = "", softmax_dim: int = -1, fill: str = "float('-inf')", pdrop=0.0):
    masked = f"        att = att.masked_fill({mask}, {fill})\n" if mask else ""
    return make_task(f"""
class Model(nn.Module):
    def __init__(self, n_embd=32, n_head=4, max_seqlen=16):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.drop = nn.Dropout({pdrop})
        self.register_buffer("bias", torch.tril(torch.ones(max_seqlen, max_seqlen)).view(1, 1, max_seqlen, max_seqlen))
        self.n_head = n_head
        self.n_embd = n_embd

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
{masked}        att = F.softmax(att, dim={softmax_dim})
        att = self.drop(att){between}
        return (att @ v).transpose(1, 2).contiguous().view(B, T, C)
""", "[torch.randn(3, 16, 32)]", name="Attention", extra="import math\n")


CAUSAL = _attention_task("self.bias[:, :, :T, :T] == 0")


def test_causal_attention_becomes_sdpa_and_matches_with_inf_and_nan_keys():
    assert "fused-attention" in rules_applied(CAUSAL)
    source = rules_candidate(CAUSAL).source
    assert "scaled_dot_product_attention(q, k, v, is_causal=True" in source
    for f in (None, scaled(3.0)):
        ref, new = run_pair(CAUSAL, source, f)
        assert_same_function(ref, new, rtol=1e-4, atol=1e-5)

    def special_token(mod):  # tokens made of inf / NaN (their values reach every later query)
        x = mod.get_inputs()[0].clone()
        x[0, 9, :] = math.inf
        x[1, 5, 3] = math.nan
        return [x]

    ref, new = run_pair(CAUSAL, source, special_token)
    assert torch.equal(torch.isnan(ref), torch.isnan(new))
    fin = torch.isfinite(ref)
    assert torch.allclose(ref[fin], new[fin], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_causal_helper_keeps_a_non_finite_future_key_masked(value):
    """A NaN or inf key above the diagonal is masked in the written form; torch's is_causal
    kernel masks it too (a boolean attn_mask would spread NaN into the earlier rows)."""
    from cudal1.policies.rules.runtime import _causal_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 12, 8) for _ in range(3))
    k[0, 1, 7, 2] = value
    masked = torch.ones(12, 12).tril().view(1, 1, 12, 12) == 0
    written = torch.softmax((q @ k.transpose(-2, -1) * 0.35).masked_fill(masked, -math.inf), dim=-1) @ v
    fused = _causal_attention(q, k, v, masked, 0.35)
    assert not torch.isnan(written[0, 1, :7]).any()
    assert torch.equal(torch.isnan(written), torch.isnan(fused))
    fin = torch.isfinite(written)
    assert torch.allclose(written[fin], fused[fin], rtol=1e-5, atol=1e-6)


def test_unmasked_attention_becomes_sdpa():
    task = _attention_task("")
    assert "fused-attention" in rules_applied(task)
    source = rules_candidate(task).source
    ref, new = run_pair(task, source)
    assert "scaled_dot_product_attention" in source.split("class ModelNew")[1]
    assert_same_function(ref, new, rtol=1e-4, atol=1e-5)


def test_a_mask_that_is_not_causal_runs_the_written_form():
    """The helper checks the mask when it runs: an upper-triangular buffer is not causal."""
    task = make_task(CAUSAL.source.split("\n\ndef get_inputs")[0].replace("torch.tril(", "torch.triu("),
                     "[torch.randn(3, 16, 32)]", name="AntiCausal", extra="import math\n")
    source = rules_candidate(task).source
    ref, new = run_pair(task, source)
    assert_same_function(ref, new, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task", [
    _attention_task("self.bias[:, :, :T, :T] == 0", pdrop=0.1),  # dropout p > 0: random, stays
    _attention_task("self.bias[:, :, :T, :T] == 0", softmax_dim=-2),  # softmax over the queries
    _attention_task("self.bias[:, :, :T, :T] == 0", fill="-1e9"),  # a finite fill: another function when a row is masked
    _attention_task("self.bias[:, :, :T, :T] == 0", between="\n        att = torch.relu(att)"),
], ids=["dropout", "softmax-dim", "finite-fill", "relu-between"])
def test_attention_look_alikes_are_left_alone(task):
    assert "fused-attention" not in rules_applied(task)

