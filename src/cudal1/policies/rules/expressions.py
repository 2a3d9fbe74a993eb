"""Elementwise operators as fp32 expressions, one spelling per kernel language (dialect).

A fused epilogue's body is one line per operator (``v3 = tanh(v2)``); the same region is
written in C++ (CUDA and CPU templates) and in Triton, so every formula here is built from a
`Dialect`'s spellings of numbers, functions, division and selection.

Soundness is the same in both: fp32 with no fast-math approximation. In Triton that means
``libdevice`` for exp/log/tanh/expm1/log1p (``tl.exp`` lowers to ``ex2.approx`` on NVIDIA GPUs),
``tl.math.erf`` (libdevice ``__nv_erff``), ``tl.math.div_rn`` for division (``/`` lowers to the
approximate ``div.full.f32``) and ``tl.math.sqrt_rn`` (``tl.sqrt`` is ``sqrt.approx``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph_utils import arg, module_of


@dataclass(frozen=True)
class Dialect:
    name: str  # "cpp" | "triton"
    functions: dict  # exp, tanh, erf, expm1, log1p, abs, clamp, relu -> the function's name
    inf: str

    def num(self, digits: str) -> str:
        """A constant written in the formula (``"0.5"``, ``"1"``) as an fp32 literal."""
        if self.name == "cpp":
            return f"{digits}f" if "." in digits else f"{digits}.f"
        return digits if "." in digits else f"{digits}.0"

    def lit(self, v: float) -> str:
        """A Python number as the float32 value torch would use (rounded from the double once)."""
        v = float(v)
        if self.name == "cpp":
            return f"(float)({v!r})".replace("inf", "INFINITY")
        text = repr(v).replace("inf", 'float("inf")').replace("nan", 'float("nan")')
        return f"({text})" if text.startswith("-") else text

    def call(self, fn: str, *args: str) -> str:
        return f"{self.functions[fn]}({', '.join(args)})"

    def div(self, a: str, b: str) -> str:
        return f"({a} / {b})" if self.name == "cpp" else f"tl.math.div_rn({a}, {b})"

    def where(self, cond: str, a: str, b: str) -> str:
        return f"({cond} ? {a} : {b})" if self.name == "cpp" else f"tl.where({cond}, {a}, {b})"

    def assign(self, var: str, expr: str) -> str:
        return f"const float {var} = {expr};" if self.name == "cpp" else f"{var} = {expr}"


CPP = Dialect("cpp", {"exp": "expf", "tanh": "tanhf", "erf": "erff", "expm1": "expm1f", "log1p": "log1pf",
                      "abs": "fabsf", "clamp": "cudal1_clamp", "relu": "cudal1_relu"}, "INFINITY")
TRITON = Dialect("triton", {"exp": "libdevice.exp", "tanh": "libdevice.tanh", "erf": "tl.math.erf",
                            "expm1": "libdevice.expm1", "log1p": "libdevice.log1p", "abs": "tl.abs",
                            "clamp": "_clamp", "relu": "_relu"}, 'float("inf")')
DIALECTS = (CPP, TRITON)


def _clamp6(a, d):
    return d.call("clamp", f"{a} + {d.num('3')}", d.num("0"), d.num("6"))


def _hardtanh(a, node, gm, d):
    mod = module_of(node, gm)
    lo = mod.min_val if mod is not None else arg(node, 1, "min_val", -1.0)
    hi = mod.max_val if mod is not None else arg(node, 2, "max_val", 1.0)
    return d.call("clamp", a, d.lit(lo), d.lit(hi))


def _leaky(a, node, gm, d):
    mod = module_of(node, gm)
    s = mod.negative_slope if mod is not None else arg(node, 1, "negative_slope", 0.01)
    return d.where(f"{a} > {d.num('0')}", a, f"{a} * {d.lit(s)}")


def _elu(a, node, gm, d):
    mod = module_of(node, gm)
    alpha = mod.alpha if mod is not None else arg(node, 1, "alpha", 1.0)
    return d.where(f"{a} > {d.num('0')}", a, f"{d.lit(alpha)} * {d.call('expm1', a)}")


def _softplus(a, node, gm, d):
    mod = module_of(node, gm)
    beta = mod.beta if mod is not None else arg(node, 1, "beta", 1.0)
    thr = mod.threshold if mod is not None else arg(node, 2, "threshold", 20.0)
    b = d.lit(beta)
    return d.where(f"{a} * {b} > {d.lit(thr)}", a, d.div(d.call("log1p", d.call("exp", f"{a} * {b}")), b))


def _gelu(a, node, gm, d):
    mod = module_of(node, gm)
    approx = mod.approximate if mod is not None else arg(node, 1, "approximate", "none")
    half, one = d.num("0.5"), d.num("1")
    if approx == "tanh":
        inner = f"{d.num('0.7978845608028654')} * ({a} + {d.num('0.044715')} * {a} * {a} * {a})"
        return f"({half} * {a} * ({one} + {d.call('tanh', inner)}))"
    return f"({half} * {a} * ({one} + {d.call('erf', a + ' * ' + d.num('0.7071067811865476'))}))"


def _mish(a, d):
    # x * tanh(softplus(x)), softplus with torch's threshold 20 (x itself above it)
    softplus = d.where(f"{a} > {d.num('20')}", a, d.call("log1p", d.call("exp", a)))
    return f"({a} * {d.call('tanh', softplus)})"


def _simple(build):
    return lambda a, node, gm, d: build(a, d)


# kind -> expression builder (a: the main value's variable; node's other arguments read as needed)
UNARY = {
    "relu": _simple(lambda a, d: d.call("relu", a)),
    "relu6": _simple(lambda a, d: d.call("clamp", a, d.num("0"), d.num("6"))),
    "sigmoid": _simple(lambda a, d: d.div(d.num("1"), f"({d.num('1')} + {d.call('exp', '-' + a)})")),
    "tanh": _simple(lambda a, d: d.call("tanh", a)),
    "silu": _simple(lambda a, d: d.div(a, f"({d.num('1')} + {d.call('exp', '-' + a)})")),
    "gelu": _gelu,
    "hardtanh": _hardtanh,
    "leaky_relu": _leaky,
    "elu": _elu,
    "softplus": _softplus,
    "mish": _simple(_mish),
    "hardswish": _simple(lambda a, d: d.div(f"{a} * {_clamp6(a, d)}", d.num("6"))),
    "hardsigmoid": _simple(lambda a, d: d.div(_clamp6(a, d), d.num("6"))),
    "exp": _simple(lambda a, d: d.call("exp", a)),
    "neg": _simple(lambda a, d: f"(-{a})"),
    "abs": _simple(lambda a, d: d.call("abs", a)),
}
BINARY = {"add": "+", "sub": "-", "mul": "*", "truediv": "/"}


def binary(op: str, a: str, b: str, d: Dialect) -> str:
    return d.div(a, b) if op == "truediv" else f"({a} {BINARY[op]} {b})"


def clamp(a: str, lo, hi, d: Dialect) -> str:
    """torch.clamp with optional number bounds; NaN stays NaN (as in torch)."""
    return d.call("clamp", a, d.lit(lo) if lo is not None else f"-{d.inf}", d.lit(hi) if hi is not None else d.inf)
