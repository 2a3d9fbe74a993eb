"""``cudal1 train sft-data|sft|self|rl --config FILE [KEY=VALUE ...]``: the three training stages.

Each stage reads one YAML config (examples: src/cudal1/train/configs/) into its dataclass in
`cudal1.train.config`; ``KEY=VALUE`` arguments override it (dotted keys for nested sections,
values read as YAML). Rerunning a command with the same config resumes a killed run.
"""

from __future__ import annotations

import argparse
import json

from .common import UsageError, console, err_console

STAGES = {
    "sft-data": "stage 1a: teacher LLMs write variants of each reference; judged-correct ones become SFT records",
    "sft": "stage 1b: supervised fine-tuning on those records (TRL SFTTrainer, LoRA optional)",
    "self": "stage 2: sample the model, judge, keep the successes, fine-tune on them; repeat",
    "rl": "stage 3: GRPO on contrastive prompts from the store, rewarded by the judge's smoothed speedup",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a policy: sft-data, sft, self, rl (needs cudal1[train])",
                       description="Train the policy model in CUDA-L1's three stages. Every reward and every kept "
                                   "sample comes from the judge.")
    stages = p.add_subparsers(dest="stage", metavar="STAGE")
    for name, help in STAGES.items():
        s = stages.add_parser(name, help=help, description=help)
        s.add_argument("--config", default=None, metavar="FILE", help="YAML config (see src/cudal1/train/configs/)")
        s.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. reward.clip=2.0 model.path=./ckpt")
        s.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
        s.add_argument("--json", action="store_true", help="print the result as JSON")
        s.set_defaults(func=run, stage=name)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run(args: argparse.Namespace) -> int:
    import yaml

    from ..train.config import STAGE_CONFIGS, ConfigError, load_config, to_dict

    cls = STAGE_CONFIGS[args.stage]
    try:
        cfg = load_config(cls, args.config, args.overrides, check=not args.print_config)
    except ConfigError as e:
        raise UsageError(f"{args.config or 'config'}: {e}") from None
    if args.print_config:
        console.print(yaml.safe_dump(to_dict(cfg), sort_keys=False), markup=False, highlight=False)
        return 0
    from ..train.modeling import TrainUnavailable

    progress = (lambda msg: err_console.print(f"[dim]{msg}[/dim]")) if not args.json else None
    try:
        result = _run_stage(args.stage, cfg, progress)
    except TrainUnavailable as e:
        raise UsageError(str(e)) from None
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _render(args.stage, result)
    return 0


def _run_stage(stage: str, cfg, progress) -> dict:
    from dataclasses import asdict

    if stage == "sft-data":
        from ..train.sft_data import run_sft_data

        return run_sft_data(cfg, progress=progress).to_json()
    if stage == "sft":
        from ..train.sft import run_sft

        r = run_sft(cfg)
        return {**asdict(r), "first_loss": r.first_loss, "last_loss": r.last_loss}
    if stage == "self":
        from ..train.self_train import run_self_train

        return run_self_train(cfg, progress=progress).to_json()
    from ..train.rl import run_rl

    return run_rl(cfg, progress=progress).to_json()


def _render(stage: str, result: dict) -> None:
    from rich.table import Table

    t = Table(title=f"cudal1 train {stage}", show_header=False)
    for k, v in result.items():
        if k in ("losses", "rewards", "iterations", "per_task"):
            if k == "iterations":
                for it in v:
                    t.add_row(f"iteration {it['iteration']}",
                              f"{it['kept']} kept / {it['samples']} samples, {it['judged']} judged; loss "
                              f"{it['first_loss']} -> {it['last_loss']}; model {it['model']}")
            elif k == "losses" and v:
                t.add_row("loss", f"{v[0][1]:.4g} (step {v[0][0]}) -> {v[-1][1]:.4g} (step {v[-1][0]})")
            elif k == "per_task":
                t.add_row("kept per task", ", ".join(f"{a}: {b}" for a, b in v.items()))
            elif k == "rewards" and v:
                t.add_row("mean raw reward", f"first {v[0]:.3f}, last {v[-1]:.3f} ({len(v)} reward calls)")
            continue
        t.add_row(k, str(v))
    console.print(t)
