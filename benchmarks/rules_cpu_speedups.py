"""CPU speedups of the rules policy's library rewrites against hand-written fused calls.

For each program below (written out by hand: attention, norms, activations), three forwards
are timed on the CPU with torch.utils.benchmark (1 thread by default; the three in interleaved
rounds, median over rounds, so that load from other processes hits all three alike):
the reference, the rules policy's ``simplify`` candidate, and a hand-written candidate that
calls the fused torch function directly. The rule's speedup should be at least the hand-written
one's (within the timing noise). With --judge, the two candidates are also judged by
``cudal1.judge.evaluate(task, source, device="cpu", config=JudgeConfig.quick())`` (speedup and
its 95% interval).

    python benchmarks/rules_cpu_speedups.py                 # all programs, 1 thread
    python benchmarks/rules_cpu_speedups.py --only attention,layer_norm --threads 2 --judge
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

HEADER = "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"


@dataclass(frozen=True)
class Program:
    name: str
    model: str  # class Model ... (the reference)
    inputs: str  # get_inputs() body
    fused_forward: str  # ModelNew's method calling the fused function by hand


PROGRAMS = [
    Program("attention", '''
class Model(nn.Module):
    """Causal self-attention written out (minGPT), dropout 0."""

    def __init__(self, n_embd=256, n_head=8, max_seqlen=512):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.register_buffer("bias", torch.tril(torch.ones(max_seqlen, max_seqlen)).view(1, 1, max_seqlen, max_seqlen))
        self.n_head, self.n_embd = n_head, n_embd

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        heads = (B, T, self.n_head, C // self.n_head)  # (B, nh, T, hs) after the transpose
        y = self.attend(q.view(heads).transpose(1, 2), k.view(heads).transpose(1, 2), v.view(heads).transpose(1, 2), T)
        return y.transpose(1, 2).contiguous().view(B, T, C)

    def attend(self, q, k, v, T):
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        return att @ v
''', "[torch.randn(4, 512, 256)]", '''
    def attend(self, q, k, v, T):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
'''),
    Program("layer_norm", '''
class Model(nn.Module):
    """LayerNorm over the last dim written out, with its affine weights."""

    def __init__(self, d=1024):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d))
        self.bias = nn.Parameter(torch.randn(d))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5) * self.weight + self.bias
''', "[torch.randn(4096, 1024)]", '''
    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, 1e-5)
'''),
    Program("rms_norm", '''
class Model(nn.Module):
    """RMSNorm over the last dim written out, with its weight."""

    def __init__(self, d=1024):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight
''', "[torch.randn(4096, 1024)]", '''
    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, 1e-6)
'''),
    Program("instance_norm", '''
class Model(nn.Module):
    """Instance normalization of NCHW written out (mean and biased variance over H, W)."""

    def forward(self, x):
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + 1e-5)
''', "[torch.randn(32, 64, 64, 64)]", '''
    def forward(self, x):
        return F.instance_norm(x, eps=1e-5)
'''),
    Program("softmax", '''
class Model(nn.Module):
    """Max-subtracted softmax over the last dim written out."""

    def forward(self, x):
        e = torch.exp(x - x.max(dim=-1, keepdim=True)[0])
        return e / e.sum(dim=-1, keepdim=True)
''', "[torch.randn(4096, 1024)]", '''
    def forward(self, x):
        return torch.softmax(x, dim=-1)
'''),
    Program("gelu_tanh", '''
class Model(nn.Module):
    """GELU (tanh form) written out, as in minGPT."""

    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
''', "[torch.randn(4096, 1024)]", '''
    def forward(self, x):
        return F.gelu(x, approximate="tanh")
'''),
    Program("silu", '''
class Model(nn.Module):
    """Swish written out."""

    def forward(self, x):
        return x * torch.sigmoid(x)
''', "[torch.randn(4096, 1024)]", '''
    def forward(self, x):
        return F.silu(x)
'''),
]


def task_of(p: Program):
    from cudal1.tasks import Task, source_hash

    src = HEADER + p.model.strip("\n") + f"\n\n\ndef get_inputs():\n    return {p.inputs}\n\n\ndef get_init_inputs():\n    return []\n"
    return Task(id=f"level2/0_{p.name}", level=2, name=p.name, source=src, source_hash=source_hash(src))


def hand_candidate(p: Program) -> str:
    return HEADER + p.model.strip("\n") + "\n\n\nclass ModelNew(Model):" + p.fused_forward


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated program names")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds of timing per forward")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median taken)")
    ap.add_argument("--judge", action="store_true", help="also judge both candidates (JudgeConfig.quick())")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import torch
    from torch.utils import benchmark

    from cudal1.policies.rules import RulesPolicy
    from cudal1.policies.rules.policy import Plan
    from cudal1.tasks import exec_task_module

    torch.set_num_threads(args.threads)
    console = Console(width=150)
    wanted = {w for w in args.only.split(",") if w}
    table = Table(title=f"CPU, {args.threads} thread(s), torch {torch.__version__}: median ms (speedup over the reference)")
    for col in ("program", "rewrites", "reference", "rules candidate", "hand-written fused", "judge: rules", "judge: hand"):
        table.add_column(col)
    policy = RulesPolicy()
    for p in PROGRAMS:
        if wanted and p.name not in wanted:
            continue
        task = task_of(p)
        proposal = policy.build(policy.traced(task), Plan(("simplify",)), "cpu")
        if proposal is None:
            table.add_row(p.name, "[red]none[/]", "", "", "", "", "")
            continue
        mod = exec_task_module(task.source, task.size)
        models = {}
        for label, source in (("rules", proposal.source), ("hand", hand_candidate(p))):
            ns: dict = {}
            exec(compile(source, f"<{label}>", "exec"), ns)  # noqa: S102 - our own candidates
            torch.manual_seed(0)
            models[label] = ns["ModelNew"]()
        torch.manual_seed(0)
        models = {"reference": mod.Model(), **models}
        torch.manual_seed(1)
        inputs = mod.get_inputs()
        timers, calls, samples = {}, {}, {label: [] for label in models}
        with torch.no_grad():
            ref_out = models["reference"](*inputs)
            for label, m in models.items():
                out = m(*inputs)
                assert torch.allclose(out, ref_out, rtol=1e-4, atol=1e-4), f"{p.name}: {label} differs"
                timers[label] = benchmark.Timer("m(*inputs)", globals={"m": m, "inputs": inputs}, num_threads=args.threads)
                once = timers[label].blocked_autorange(min_run_time=0.2).median
                calls[label] = max(1, int(args.min_time / args.rounds / once))
            for _ in range(args.rounds):  # interleaved, so that a load change on a shared machine hits all three
                for label, t in timers.items():
                    samples[label].append(t.timeit(calls[label]).median * 1e3)
        ms = {label: statistics.median(v) for label, v in samples.items()}
        judged = ["", ""]
        if args.judge:
            from cudal1.judge import JudgeConfig, evaluate

            for i, source in enumerate((proposal.source, hand_candidate(p))):
                v = evaluate(task, source, device="cpu", config=JudgeConfig.quick())
                ci = v.speedup_ci
                rejects = ", ".join(f.id for f in v.findings if f.severity == "reject")
                judged[i] = ((f"{v.speedup:.2f}x" + (f" [{ci[0]:.2f}-{ci[1]:.2f}]" if ci else "")) if v.speedup
                             else f"{v.verdict} ({rejects})")
        rules = ", ".join(dict.fromkeys(line.split(":")[0].lstrip("- ") for line in proposal.notes.splitlines()))

        def cell(label):
            return f"{ms[label]:.2f} ({ms['reference'] / ms[label]:.2f}x)"

        table.add_row(p.name, rules, f"{ms['reference']:.2f}", cell("rules"), cell("hand"), *judged)
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
