"""`RulesPolicy`: the LLM-free optimizer. Proposes complete candidates, one per strategy plan.

A plan is a sequence of components (``simplify``, ``fuse``, ``fuse-triton``, ``cudagraph``,
``compile-<mode>``, ``channels-last``, ``tf32``, ``autocast-bf16``); graph components rewrite the forward, wrapper
components wrap it. The plan's name is its components joined by ``+``, and the candidate's
``strategy``. Plans are tried in the order `ordering.StrategyStats` learned from the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ...tasks.contract import Task, source_hash
from ..base import Context, Proposal
from . import codegen, cost, wrappers
from .analysis import TracedTask, trace_task
from .codegen import CodegenError
from .ordering import PRIOR, StrategyStats

log = logging.getLogger(__name__)

GRAPH_COMPONENTS = ("simplify", "fuse", "fuse-triton")
FUSE = ("fuse", "fuse-triton")  # the same generated kernels, in CUDA C++ (or C++/OpenMP) or in Triton
LOWER_PRECISION = ("tf32", "autocast-bf16")

_COMPONENT_DOCS = {
    "simplify": "sound rewrites of the FX graph: algebra, fused library functions, weight folding",
    "fuse": "generated fused kernels (elementwise epilogues, row reductions)",
    "fuse-triton": "the same generated kernels written in Triton (CUDA)",
    "cudagraph": "whole-forward CUDA graph replay with static input buffers",
    "channels-last": "channels_last layout for convolutions, cudnn.benchmark",
    "tf32": "TF32 matmuls/convolutions (lower precision)",
    "autocast-bf16": "bfloat16 autocast (lower precision)",
}


def component_doc(c: str) -> str:
    if c.startswith("compile-"):
        return f'torch.compile(mode="{c[len("compile-"):]}")'
    return _COMPONENT_DOCS.get(c, c)


@dataclass
class Plan:
    components: tuple[str, ...]

    @property
    def name(self) -> str:
        return "+".join(self.components)

    @property
    def graph_components(self) -> tuple[str, ...]:
        return tuple(c for c in self.components if c in GRAPH_COMPONENTS)

    @property
    def wrapper_components(self) -> tuple[str, ...]:
        return tuple(c for c in self.components if c not in GRAPH_COMPONENTS)

    @property
    def lower_precision(self) -> bool:
        return any(c in LOWER_PRECISION for c in self.components)


def _wrapper_spec(component: str) -> tuple[str, ...]:
    if component.startswith("compile-"):
        return ("compile", component[len("compile-"):])
    return ({"channels-last": "channels_last", "cudagraph": "cudagraph", "tf32": "tf32",
             "autocast-bf16": "autocast_bf16"}[component],)


class RulesPolicy:
    """The LLM-free optimizer: ``propose(task, context)`` returns complete candidates, best first."""

    def __init__(self, name: str = "rules", stats: StrategyStats | None = None, plans: tuple[str, ...] | None = None,
                 cpu_compile: bool = False):
        """``cpu_compile``: also propose torch.compile on CPU (off by default: inductor's C++
        build costs 30-100 s per candidate on a small machine, for gains CUDA tasks care about)."""
        self.name = name
        self.cpu_compile = cpu_compile
        self.stats = stats or StrategyStats()
        self.plans = plans or PRIOR
        # The device's measured peaks (optimize sets them on CUDA): with the reference's time in
        # the context, plans that cannot beat it are left out (`cost`); the last call's are kept.
        self.peaks = None
        self.skipped: list[cost.Skipped] = []
        self._traced: dict[str, TracedTask] = {}
        self._graphs: dict[tuple, object] = {}

    # --- analysis (cached per task source and size) -----------------------------------------
    def traced(self, task: Task) -> TracedTask:
        key = f"{task.source_hash}:{task.size}"
        if key not in self._traced:
            self._traced[key] = trace_task(task)
        return self._traced[key]

    def _simplified(self, traced: TracedTask):
        key = ("simplify", traced.task.source_hash, traced.task.size)
        if key not in self._graphs:
            from .simplify import simplify

            try:
                self._graphs[key] = simplify(traced)
            except Exception as e:  # noqa: BLE001 - a rule bug disables the strategy, never the run
                log.warning("simplification of %s failed: %s", traced.task.id, e)
                self._graphs[key] = None
        return self._graphs[key]

    def _fused(self, traced: TracedTask, device: str, after_simplify: bool):
        key = ("fuse", traced.task.source_hash, traced.task.size, device.split(":")[0], after_simplify)
        if key not in self._graphs:
            from .fusion import fuse

            base = self._simplified(traced) if after_simplify else None
            if after_simplify and base is None:
                self._graphs[key] = None
            else:
                try:
                    self._graphs[key] = fuse(traced, device, base)
                except Exception as e:  # noqa: BLE001
                    log.warning("fusion of %s failed: %s", traced.task.id, e)
                    self._graphs[key] = None
        return self._graphs[key]

    # --- plans --------------------------------------------------------------------------------
    def applicable(self, traced: TracedTask, plan: Plan, context: Context) -> bool:
        cuda = context.device.startswith("cuda")
        comps = plan.components
        if plan.lower_precision and not (context.allow_lower_precision and cuda):
            return False
        for c in comps:
            if c in ("cudagraph", "compile-reduce-overhead", "compile-max-autotune-no-cudagraphs", "tf32", "autocast-bf16") and not cuda:
                return False
            if c.startswith("compile-") and not cuda and not self.cpu_compile:
                return False
            if c == "channels-last" and not traced.has_convolution():
                return False
            if c == "simplify" and self._simplified(traced) is None:
                return False
            if c == "fuse-triton" and (not cuda or "fuse" in comps):
                return False  # Triton kernels run on GPUs only; one kernel language per plan
            if c in FUSE and self._fused(traced, context.device, "simplify" in comps) is None:
                return False
        if "cudagraph" in comps:
            _, call = codegen.forward_params(traced.model_source)
            if "=" in call:
                return False  # keyword arguments: the graph key covers positional inputs only
        return True

    def build(self, traced: TracedTask, plan: Plan, device: str) -> Proposal | None:
        """The candidate source for ``plan``, or None when the plan does not apply."""
        params, call = codegen.forward_params(traced.model_source)
        plain = [p for p in call.split(", ") if p and "=" not in p and not p.startswith("*")]
        graph_layers = plan.graph_components
        wrapper_list = [_wrapper_spec(c) for c in plan.wrapper_components]
        notes: list[str] = []
        imports: list[str] = []
        helpers: list[str] = []
        init_lines: list[str] = []
        methods: list[str] = []
        impl_name = "forward" if not wrapper_list else "_forward_impl"
        if graph_layers:
            fuse = [c for c in graph_layers if c in FUSE]
            if fuse:
                result = self._fused(traced, device, "simplify" in graph_layers)
            else:
                result = self._simplified(traced)
            if result is None:
                return None
            try:
                gf = result.forward(impl_name, backend="triton") if fuse == ["fuse-triton"] else result.forward(impl_name)
            except CodegenError as e:
                log.info("%s: %s", plan.name, e)
                return None
            imports += gf.imports
            helpers += gf.helpers
            init_lines += gf.init_lines
            methods += gf.class_blocks
            methods.append(gf.method)
            notes += [f"- {r}" for r in result.rewrites]
        elif wrapper_list:
            methods.append(f"def _forward_impl(self, {params}):\n    return super().forward({call})")
        else:
            return None
        if wrapper_list:
            composed = wrappers.compose(wrapper_list, params, call, plain)
            imports += composed.imports
            helpers += composed.helpers
            init_lines += composed.init_lines
            methods = composed.methods[::-1] + methods  # outermost (forward) first: reads top-down
        doc = "Components, in order: " + "; ".join(f"{c} ({component_doc(c)})" for c in plan.components) + "."
        try:
            source = codegen.assemble(
                task_id=traced.task.id, title=plan.name, notes=[doc, *(["Rewrites:"] + notes if notes else [])],
                model_source=traced.model_source, imports=imports, helpers=helpers,
                class_doc=f"{traced.task.name}, optimized: {plan.name}.", init_lines=init_lines, methods=methods,
            )
        except SyntaxError as e:
            log.warning("generated source for %s does not parse: %s", plan.name, e)
            return None
        return Proposal(source=source, strategy=plan.name, notes="\n".join(notes), components=plan.components,
                        lower_precision=plan.lower_precision, template_version="rules-1")

    def ordered_plans(self, task: Task, context: Context) -> list[Plan]:
        traced = self.traced(task)
        names = [p for p in self.plans if self.applicable(traced, Plan(tuple(p.split("+"))), context)]
        local = StrategyStats()
        for a in context.history:  # this task's own attempts weigh in too
            local.add(traced.signature, a.strategy, a.verdict.accepted, a.verdict.speedup)
        merged = _merge(self.stats, local)
        plans = [Plan(tuple(n.split("+"))) for n in merged.order(traced.signature, names)]
        work = self._work(task) if self.peaks is not None and context.reference_ms else None
        verdicts = [cost.skipped(p.components, context.reference_ms, work, self.peaks) for p in plans]
        self.skipped = [v for v in verdicts if v is not None]
        return [p for p, v in zip(plans, verdicts) if v is None]

    def _work(self, task: Task):
        from ...analysis.roofline import task_work

        try:
            return task_work(task)
        except Exception as e:  # noqa: BLE001 - a task whose work cannot be counted is not pruned
            log.warning("no roofline work for %s: %s", task.id, e)
            return None

    def propose(self, task: Task, context: Context) -> list[Proposal]:
        """Candidates not yet judged for this task, best first, at most ``context.budget``."""
        tried = {source_hash(a.source) for a in context.history} | {a.strategy for a in context.history}
        out: list[Proposal] = []
        traced = self.traced(task)
        for plan in self.ordered_plans(task, context):
            if len(out) >= context.budget:
                break
            if plan.name in tried:
                continue
            proposal = self.build(traced, plan, context.device)
            if proposal is None or source_hash(proposal.source) in tried:
                continue
            out.append(proposal)
        return out


def _merge(a: StrategyStats, b: StrategyStats) -> StrategyStats:
    m = StrategyStats()
    for src in (a, b):
        for k, v in src.by_signature.items():
            row = m.by_signature[k]
            for i in range(3):
                row[i] += v[i]
        for k, v in src.by_strategy.items():
            row = m.by_strategy[k]
            for i in range(3):
                row[i] += v[i]
    return m
