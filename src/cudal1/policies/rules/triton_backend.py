"""Triton versions of the generated kernels: a second backend beside CUDA C++.

The region and kernel IR is fusion.py's (`EpilogueKernel`, `RowKernel`, `RmsKernel`); this
module writes each kernel as ``@triton.jit`` functions plus the Python launcher the rewritten
forward calls, from ``templates/kernels_triton.py.j2``. Triton compiles a kernel in seconds on
its first launch, where ``load_inline`` takes about a minute for the CUDA C++ ones; the judge
measures both and keeps the faster.

Launch shapes: epilogues one program per 1024 elements; row reductions one program per row
with BLOCK the row length rounded up to a power of two (at most 4096; longer rows are walked
in chunks); RMS norms over contiguous positions like rows, otherwise one program per 256
independent positions walking the normalized dim with stride ``inner``. Channel operands are
indexed as in the C++ kernels, ``(i // inner) % size``; inputs are made contiguous.

Numerics (fp32, no fast-math; see expressions.py): libdevice exp/log/tanh/expm1/log1p,
``tl.math.erf``, ``tl.math.div_rn`` and ``tl.math.sqrt_rn``, launched with
``enable_reflect_ftz=False`` so libdevice keeps subnormals. Triton contracts ``a * b + c`` into
FMAs, as nvcc does by default. LayerNorm has no split-row path here (one program per row).
"""

from __future__ import annotations

from functools import cache

import jinja2

from .codegen import Helper

IMPORTS = ["import math", "import triton", "import triton.language as tl", "from triton.language.extra import libdevice"]


@cache
def _macros():
    from .fusion import TEMPLATES

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.get_template("kernels_triton.py.j2").module


def prelude_source() -> str:
    """Definitions every Triton kernel file shares (NaN-keeping clamp and relu, launch options)."""
    return str(_macros().prelude()).strip("\n") + "\n"


def kernel_source(kernel) -> str:
    """The kernel's ``@triton.jit`` function(s) and its launcher, named ``kernel.name``."""
    return str(_macros().kernel(kernel)).strip("\n") + "\n"


def launchers(kernels, helpers: list[Helper]) -> list[Helper]:
    """``helpers`` (the C++ launchers, in kernel order) with the Triton kernel and launcher as
    their source: the graph calls the same functions, the candidate defines them in Triton."""
    by_name = {k.name: k for k in kernels}
    return [Helper(h.name, h.fn, kernel_source(by_name[h.name])) if h.name in by_name else h for h in helpers]
