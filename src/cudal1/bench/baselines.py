"""Baselines as ordinary candidate sources, measured by the judge like any candidate.

Each baseline is the task's reference wrapped as ``class ModelNew(Model)`` (same constructor,
same parameters created in the same order, so the same weights under the judge's seed):

- ``eager``: the reference itself (the judge should report ~1.0x; a check of the timer);
- ``compile``: ``torch.compile`` of the reference forward, default mode;
- ``compile-reduce-overhead``: ``torch.compile(mode="reduce-overhead")`` (CUDA graphs inside),
  each call marked as a new step and its outputs cloned, as PyTorch's CUDA-graph-trees docs
  tell a caller that keeps outputs past the next call (the next replay overwrites them);
- ``cuda-graph``: a hand-written CUDA-graph capture of the reference forward: static input
  buffers, warm-up on a side stream (as the CUDA-graph docs require before capture), replay
  with the inputs copied into the static buffers and the output cloned out of the graph's pool;
  a call whose shapes differ from the captured ones, or any call off the GPU, runs eagerly.

Every speedup the bench reports for a baseline is the judge's speedup of this source on the
same inputs, with the same timer, as the candidates.
"""

from __future__ import annotations

import ast
import re

from ..tasks.contract import Task

BASELINES = ("eager", "compile", "compile-reduce-overhead", "cuda-graph")
BASELINE_HELP = {
    "eager": "the reference itself (expected ~1.0x: checks the timer)",
    "compile": "torch.compile, default mode",
    "compile-reduce-overhead": "torch.compile(mode='reduce-overhead')",
    "cuda-graph": "the reference captured once in a CUDA graph and replayed",
}
# Functions of the task module the judge takes from the reference only; a candidate that
# defines them could look like one that rewrites its inputs, so the baselines drop them.
_INPUT_FUNCTIONS = ("get_inputs", "get_init_inputs")

_EAGER = '''

class ModelNew(Model):
    """Baseline `eager`: the reference program itself."""
'''

_COMPILE = '''

class ModelNew(Model):
    """Baseline `compile`: the reference forward under torch.compile (default mode)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._compiled_forward = torch.compile(super().forward)

    def forward(self, *args, **kwargs):
        return self._compiled_forward(*args, **kwargs)
'''

_COMPILE_GRAPHS = '''

class ModelNew(Model):
    """Baseline `compile-reduce-overhead`: the reference forward under torch.compile(mode="reduce-overhead").
    Each call is a new step and its outputs are cloned: the next replay reuses their memory."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._compiled_forward = torch.compile(super().forward, mode="reduce-overhead")

    def forward(self, *args, **kwargs):
        torch.compiler.cudagraph_mark_step_begin()
        return torch.utils._pytree.tree_map(
            lambda t: t.clone() if isinstance(t, torch.Tensor) else t, self._compiled_forward(*args, **kwargs)
        )
'''

_CUDA_GRAPH = '''

class ModelNew(Model):
    """Baseline `cuda-graph`: the reference forward captured once in a CUDA graph."""

    _WARMUP_CALLS = 3

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._graph = None
        self._graph_key = None
        self._static_inputs = None
        self._static_output = None

    @staticmethod
    def _key(args):
        return tuple(
            (tuple(a.shape), a.dtype, a.device, a.stride()) if isinstance(a, torch.Tensor) else ("value", repr(a))
            for a in args
        )

    def _capture(self, args):
        self._static_inputs = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self._WARMUP_CALLS):
                super().forward(*self._static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._static_output = super().forward(*self._static_inputs)
        self._graph = graph

    def forward(self, *args):
        on_gpu = any(isinstance(a, torch.Tensor) and a.is_cuda for a in args)
        if not on_gpu:
            return super().forward(*args)
        key = self._key(args)
        if self._graph is None:
            with torch.no_grad():
                self._capture(args)
            self._graph_key = key
        elif key != self._graph_key:
            return super().forward(*args)  # shapes changed: eager, never a stale graph
        for static, a in zip(self._static_inputs, args):
            if isinstance(static, torch.Tensor):
                static.copy_(a)
        self._graph.replay()
        return torch.utils._pytree.tree_map(
            lambda t: t.clone() if isinstance(t, torch.Tensor) else t, self._static_output
        )
'''


def _assigned_names(stmt: ast.stmt) -> set[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def reference_body(source: str) -> tuple[str, set[str]]:
    """The reference source as the body of a baseline: without ``get_inputs``/``get_init_inputs``
    and without module-level constants that only those used (the problem sizes), so the
    baseline defines no sizes of its own. Returns the text and the constants it kept (those the
    model itself reads)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()

    def span(node: ast.stmt) -> range:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return range(start - 1, node.end_lineno)

    assigns = [n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))]
    others = [n for n in tree.body if n not in assigns
              and not (isinstance(n, ast.FunctionDef) and n.name in _INPUT_FUNCTIONS)]
    for n in tree.body:
        if isinstance(n, ast.FunctionDef) and n.name in _INPUT_FUNCTIONS:
            drop.update(span(n))
    used = {x.id for n in others for x in ast.walk(n) if isinstance(x, ast.Name)}
    kept: set[str] = set()
    changed = True
    while changed:  # constants defined from other constants: keep what the kept ones read
        changed = False
        for a in assigns:
            names = _assigned_names(a)
            if names & used and not names <= kept:
                kept |= names
                used |= {x.id for x in ast.walk(a.value) if isinstance(x, ast.Name)} if a.value else set()
                changed = True
    for a in assigns:
        if not (_assigned_names(a) & kept) and "SMOKE" not in _assigned_names(a):
            drop.update(span(a))
    text = "".join(line for i, line in enumerate(lines) if i not in drop)
    return text, kept


def baseline_source(task: Task, kind: str) -> str:
    """A complete candidate source (``class ModelNew``) implementing baseline ``kind`` for ``task``."""
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}: use one of {', '.join(BASELINES)}")
    body, kept = reference_body(task.source)
    body = re.sub(r"\n{3,}", "\n\n\n", body).rstrip() + "\n"
    header = f"# cudal1 baseline '{kind}' of {task.id} (generated from the task's reference).\n"
    if "import torch\n" not in body:
        header += "import torch\n"
    if task.size == "smoke" and task.has_smoke and kept:
        # The judge applies SMOKE to the reference's module; a model that reads one of its
        # module constants must see the same value here.
        body += "\nglobals().update({k: v for k, v in SMOKE.items() if k in globals()})\n"
    if kind == "eager":
        tail = _EAGER
    elif kind == "compile":
        tail = _COMPILE
    elif kind == "compile-reduce-overhead":
        tail = _COMPILE_GRAPHS
    else:
        tail = _CUDA_GRAPH
    return header + body + tail
