"""Which of the rules policy's graph rewrites apply to a task, and whether the candidate holds.

`task_coverage` asks the policy itself (`RulesPolicy`) for its ``simplify`` and ``fuse``
candidates on the CPU; wrappers (CUDA graphs, torch.compile, channels_last) are not graph
rewrites and are not counted. A ``simplify`` candidate must pass the judge's static scan
(`judge.catalogue.scan_source`, no reject finding) and is then run against the reference on
small inputs (`check_candidate`): the same seeded weights, random inputs, and the same inputs
with +-inf and NaN planted; it counts only when its outputs match (a float32 value mismatch
counts when the same check in float64 agrees: rounding amplified by an ill-conditioned output). The check runs in a child
process with a time limit; ``fuse`` candidates need a C++ build and are counted as proposed
unless ``check_kernels`` asks for the build and the same check.

Small inputs: a task with smoke sizes runs at them; one that defines ``batch_size`` runs with
``batch_size = 2`` (appended to its source, so ``get_inputs`` and ``get_init_inputs`` read
it). The candidate checked is the one the policy proposes for the small task: a graph bakes
the model's int attributes (a head count) and, when traced at the task's shapes
(`tracing.shape_guard`), its input shapes, so the full-size candidate would fail or run the
reference's forward there. It counts only when the same rules fire at both sizes.
"""

from __future__ import annotations

import multiprocessing as mp
import re
from dataclasses import asdict, dataclass

import torch

from ...judge.catalogue import scan_source
from ...tasks.contract import Task, exec_task_module, source_hash
from .policy import Plan, RulesPolicy

SMALL_BATCH = 2
# Rules that change nothing a training-mode forward runs (KernelBench models are judged in
# training mode): listed, but a task with only these does not count as rewritten.
EVAL_ONLY_RULES = {"batchnorm-eval-fold"}


@dataclass(frozen=True)
class Check:
    status: str  # ok | mismatch | rejected (static scan) | error | timeout | not-run
    max_error: float | None = None
    message: str = ""


@dataclass(frozen=True)
class TaskCoverage:
    task_id: str
    level: int
    traced: bool
    trace_error: str
    simplify_rules: tuple[str, ...]
    simplify_check: Check
    fuse_kernels: tuple[str, ...]
    fuse_check: Check

    @property
    def simplify_applies(self) -> bool:
        """A simplify candidate was proposed, rewrites what a training-mode forward runs, and
        matched the reference."""
        return bool(set(self.simplify_rules) - EVAL_ONLY_RULES) and self.simplify_check.status == "ok"

    @property
    def eval_only(self) -> bool:
        """The only simplify rewrites take effect in eval mode (and the candidate matched)."""
        return bool(self.simplify_rules) and set(self.simplify_rules) <= EVAL_ONLY_RULES and self.simplify_check.status == "ok"

    @property
    def fuse_applies(self) -> bool:
        """A fuse candidate was proposed (and, when checked, matched)."""
        return bool(self.fuse_kernels) and self.fuse_check.status in ("ok", "not-run")

    @property
    def graph_rewrite(self) -> bool:
        return self.simplify_applies or self.fuse_applies

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(simplify_applies=self.simplify_applies, eval_only=self.eval_only, fuse_applies=self.fuse_applies,
                 graph_rewrite=self.graph_rewrite)
        return d


def small_task(task: Task) -> Task:
    """The task at its smoke sizes when it defines them (the built-in suite), else with
    ``batch_size = 2`` when it defines a larger one, else the task itself."""
    if task.has_smoke:
        return task.with_size("smoke")
    m = re.search(r"^batch_size\s*=\s*(\d+)\s*$", task.source, flags=re.MULTILINE)
    if m is None or int(m.group(1)) <= SMALL_BATCH:
        return task
    source = task.source + f"\n\nbatch_size = {SMALL_BATCH}  # cudal1 coverage check: small inputs\n"
    return Task(id=task.id, level=task.level, name=task.name, source=source, source_hash=source_hash(source),
                path=task.path, size=task.size, number=task.number, suite=task.suite)


def plant_specials(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` with +inf, -inf and NaN at its first, middle and last element."""
    x = x.clone()
    flat = x.view(-1)
    if flat.numel() >= 3:
        flat[0], flat[flat.numel() // 2], flat[-1] = float("inf"), float("-inf"), float("nan")
    return x


def _flat(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return []


def compare_on_inputs(task: Task, source: str, specials: bool = True, seed: int = 0,
                      dtype: torch.dtype = torch.float32) -> Check:
    """Run the reference and ``source``'s ModelNew (weights seeded alike) on the task's inputs,
    on the same inputs scaled by 100, and (``specials``) with +-inf and NaN planted. Outputs
    must have the same shapes and NaN positions, and agree within 1e-4 relative to the output's
    scale (a different summation order rounds differently; a wrong formula does not come close).
    Then both models go to eval mode and the first inputs run again (BatchNorm folding).
    ``dtype=torch.float64`` runs both models and inputs in double precision."""
    torch.set_num_threads(1)
    mod = exec_task_module(task.source, task.size)
    ns: dict = {}
    exec(compile(source, "<candidate>", "exec"), ns)  # noqa: S102 - a candidate the rules policy generated
    init = mod.get_init_inputs()
    torch.manual_seed(seed)
    ref_model = mod.Model(*init)
    torch.manual_seed(seed)
    new_model = ns["ModelNew"](*init)
    torch.manual_seed(seed + 1)
    inputs = mod.get_inputs()
    if dtype != torch.float32:
        ref_model.to(dtype)
        new_model.to(dtype)
        inputs = [x.to(dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs]
    variants = [inputs, [x * 100 if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs]]
    if specials:
        variants.append([plant_specials(x) if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs])
    variants.append(inputs)  # in eval mode
    worst = 0.0
    for i, xs in enumerate(variants):
        if i == len(variants) - 1:
            ref_model.eval()
            new_model.eval()
        with torch.no_grad():
            torch.manual_seed(seed + 2)
            ref = _flat(ref_model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in xs]))
            torch.manual_seed(seed + 2)
            new = _flat(new_model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in xs]))
        if len(ref) != len(new) or any(a.shape != b.shape for a, b in zip(ref, new)):
            return Check("mismatch", message=f"input set {i}: output shapes differ")
        for a, b in zip(ref, new):
            a, b = a.double(), b.double()
            if i == 2:  # special values: the rewrite may be a number where the reference is NaN, never the reverse
                keep = ~torch.isnan(a)
                if torch.isnan(b[keep]).any():
                    return Check("mismatch", message="NaN where the reference is a number (inf/NaN inputs)")
                a, b = a[keep], b[keep]
            same_inf = torch.isinf(a) == torch.isinf(b)
            if not bool(same_inf.all()) or not torch.equal(a[torch.isinf(a)], b[torch.isinf(b)]):
                return Check("mismatch", message=f"input set {i}: infinities differ")
            fin = torch.isfinite(a) & torch.isfinite(b)
            if i != 2 and torch.isnan(a).ne(torch.isnan(b)).any():
                return Check("mismatch", message=f"input set {i}: NaN positions differ")
            if fin.any():
                err = (a[fin] - b[fin]).abs().max().item()
                scale = max(1.0, a[fin].abs().max().item())
                worst = max(worst, err / scale)
                if err > 1e-4 * scale:
                    return Check("mismatch", err / scale, f"input set {i}: max error {err:.3g} (scale {scale:.3g})")
    return Check("ok", worst)


def _child(queue, task, source, specials):
    """The float32 check; a float32 value mismatch is run again in float64, which tells float32
    rounding amplified by an ill-conditioned output at this size (a BatchNorm over two samples
    of nearly equal values) from a wrong rewrite: it counts as matching only if float64 agrees."""
    try:
        first = compare_on_inputs(task, source, specials)
        if first.status == "mismatch" and "max error" in first.message:
            again = compare_on_inputs(task, source, specials, dtype=torch.float64)
            if again.status == "ok":
                first = Check("ok", first.max_error, f"float32 {first.message}; float64 agrees (max relative error "
                                                     f"{again.max_error:.2g}): rounding, amplified")
        queue.put(first)
    except Exception as e:  # noqa: BLE001 - reported as the check's outcome
        queue.put(Check("error", message=f"{type(e).__name__}: {e}".splitlines()[0][:200]))


def check_candidate(task: Task, source: str, timeout_s: float = 60.0, specials: bool = True) -> Check:
    """The judge's static scan (a candidate it rejects does not count), then
    `compare_on_inputs` in a child process, stopped after ``timeout_s``."""
    rejects = [f.id for f in scan_source(source) if f.severity == "reject"]
    if rejects:
        return Check("rejected", message=f"the judge's static scan rejects it: {', '.join(rejects)}")
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, task, source, specials), daemon=True)
    proc.start()
    proc.join(timeout_s)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return Check("timeout", message=f"no result within {timeout_s:.0f} s")
    try:
        return queue.get(timeout=1.0)
    except Exception:  # noqa: BLE001
        return Check("error", message=f"the check's process ended with status {proc.exitcode}")


def _rules(result) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(r).split(":")[0] for r in result.rewrites)) if result is not None else ()


def task_coverage(task: Task, check: bool = True, check_kernels: bool = False, timeout_s: float = 60.0,
                  policy: RulesPolicy | None = None) -> TaskCoverage:
    """What the rules policy proposes for ``task`` on the CPU, checked as the module doc says."""
    policy = policy or RulesPolicy()
    try:
        traced = policy.traced(task)
    except Exception as e:  # noqa: BLE001 - a task that cannot even be built on meta
        return TaskCoverage(task.id, task.level, False, f"{type(e).__name__}: {e}".splitlines()[0][:200], (),
                            Check("not-run"), (), Check("not-run"))
    simplified = policy._simplified(traced)
    fused = policy._fused(traced, "cpu", False)
    s_rules, f_kernels = _rules(simplified), _rules(fused)
    s_check = f_check = Check("not-run")
    small = small_task(task)
    small_traced = policy.traced(small) if small is not task else traced
    for plan, rules, wanted in (("simplify", s_rules, check), ("fuse", f_kernels, check and check_kernels)):
        if not rules or not wanted:
            continue
        # The candidate for the small task: the same rules must fire there (a graph bakes the
        # model's int attributes and, when traced at the task's shapes, its input shapes).
        small_result = policy._simplified(small_traced) if plan == "simplify" else policy._fused(small_traced, "cpu", False)
        proposal = policy.build(small_traced, Plan((plan,)), "cpu")
        if proposal is None or _rules(small_result) != rules:
            result = Check("error", message=f"at the small size the rules differ: {', '.join(_rules(small_result)) or 'none'}")
        else:
            result = check_candidate(small, proposal.source, timeout_s)
        if plan == "simplify":
            s_check = result
        else:
            f_check = result
    return TaskCoverage(task.id, task.level, traced.traced, traced.trace_error or "", s_rules, s_check, f_kernels, f_check)
