"""Small task sources for the rules-policy tests (each a KernelBench-format program)."""

from __future__ import annotations

import torch

from cudal1.tasks import Task, exec_task_module, source_hash

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"


def make_task(body: str, inputs: str, init: str = "[]", name: str = "Fixture", extra: str = "") -> Task:
    src = (HEADER + extra + body + f"\n\ndef get_inputs():\n    return {inputs}\n\n\ndef get_init_inputs():\n    return {init}\n")
    return Task(id=f"level2/0_{name}", level=2, name=name, source=src, source_hash=source_hash(src))


def build_pair(task: Task, candidate_source: str, seed: int = 0, patch_globals: dict | None = None):
    """(reference Model, candidate ModelNew) built with identically seeded weights.
    ``patch_globals`` replaces names of the candidate's module after it ran (test doubles)."""
    mod = exec_task_module(task.source, task.size)
    ns: dict = {}
    exec(compile(candidate_source, "<candidate>", "exec"), ns)  # noqa: S102 - our own generated code
    ns.update(patch_globals or {})
    init = mod.get_init_inputs()
    torch.manual_seed(seed)
    ref = mod.Model(*init)
    torch.manual_seed(seed)
    return ref, ns["ModelNew"](*init)


def run_pair(task: Task, candidate_source: str, inputs_fn=None, seed: int = 0, patch_globals: dict | None = None):
    """(reference output, candidate output) on the same inputs and identically seeded weights."""
    mod = exec_task_module(task.source, task.size)
    ref, new = build_pair(task, candidate_source, seed, patch_globals)
    torch.manual_seed(seed + 1)
    inputs = inputs_fn(mod) if inputs_fn else mod.get_inputs()
    with torch.no_grad():
        return ref(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]), new(*inputs)


def scaled(factor: float, special: bool = False):
    """get_inputs() scaled (negative/large values), optionally with +-inf and NaN planted."""
    def fn(mod):
        out = []
        for x in mod.get_inputs():
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                x = x * factor - factor / 3
                if special and x.numel() >= 3:
                    flat = x.view(-1)
                    flat[0], flat[1], flat[2] = float("inf"), float("-inf"), float("nan")
            out.append(x)
        return out
    return fn


def assert_exact(a: torch.Tensor, b: torch.Tensor):
    """Equal, NaN where the other is NaN."""
    assert a.shape == b.shape and a.dtype == b.dtype
    assert torch.equal(torch.isnan(a), torch.isnan(b))
    m = ~torch.isnan(a)
    assert torch.equal(a[m], b[m])


def assert_close(ref: torch.Tensor, new: torch.Tensor, atol: float, rtol: float = 1e-5):
    """Same shape and dtype, NaN at the same places, close elsewhere (infinities equal)."""
    assert ref.shape == new.shape and ref.dtype == new.dtype
    assert torch.equal(torch.isnan(ref), torch.isnan(new))
    m = ~torch.isnan(ref)
    assert torch.allclose(ref[m], new[m], atol=atol, rtol=rtol), (ref - new).abs().max()


def assert_nan_relaxed(ref: torch.Tensor, cand: torch.Tensor, atol: float = 0.0):
    """Equal wherever the reference is not NaN; the candidate is never NaN where the reference is not."""
    assert ref.shape == cand.shape and ref.dtype == cand.dtype
    m = ~torch.isnan(ref)
    assert not torch.isnan(cand[m]).any()
    assert torch.allclose(ref[m], cand[m], atol=atol, rtol=0)


def rules_candidate(task: Task, plan: str = "simplify", device: str = "cpu"):
    """The rules policy's proposal for ``plan`` (components joined by '+'); it must apply."""
    from cudal1.policies.rules import RulesPolicy
    from cudal1.policies.rules.policy import Plan

    policy = RulesPolicy()
    p = policy.build(policy.traced(task), Plan(tuple(plan.split("+"))), device)
    assert p is not None, f"{plan} should apply to {task.name}"
    return p


def rules_applied(task: Task) -> list[str]:
    """Names of the simplification rules that fire on ``task``."""
    from cudal1.policies.rules.analysis import trace_task
    from cudal1.policies.rules.simplify import simplify

    s = simplify(trace_task(task))
    return [r.rule for r in s.rewrites] if s else []
