"""Throughput of the training stages on this machine, with a model built from scratch (no downloads).

    python benchmarks/train_throughput.py --seconds 60 --out train_throughput.json

Builds a Llama-config decoder (default ~30M parameters) and a byte-level BPE tokenizer trained on the
prompts of the chosen tasks, then runs each stage for about ``--seconds``:

  sft          TRL SFTTrainer on (prompt, answer) records          samples/s, tokens/s, peak GPU memory
  generate     transformers generate (stage 2's sampler)            completions/s, new tokens/s
  judge        the judge on correct answers (evaluate_many)         evaluations/s
  self         one stage-2 iteration: sample, judge, fine-tune      samples/s, evaluations/s
  grpo         TRL GRPOTrainer, a synthetic reward (no judge)       completions/s, steps/s
  rl           GRPO with the judge as reward (run_rl, live prompts) completions/s, evaluations/s

The SFT stage over-fits the model on one correct answer per task, so later stages sample real code.
Stages that need a missing package (trl, peft, datasets) are reported as skipped with the reason.
Prints a table and writes JSON. Numbers are from this machine and this tiny model only: they
measure the harness's overheads, not what a 7B policy costs (see docs/training.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

ANSWERS = {
    "level1/1_Square_Matmul": "torch.mm(A, B)",
    "level1/19_Swish": "torch.nn.functional.silu(x)",
    "level1/5_Diag_Matmul": "a.unsqueeze(1) * B",
}
ARGS = {"level1/1_Square_Matmul": "A, B", "level1/19_Swish": "x", "level1/5_Diag_Matmul": "a, B"}


def answer(task_id: str) -> str:
    return (
        "### Performance Analysis\nThe reference does more work than needed.\n\n"
        "### Algorithm Design\nOne library call.\n\n### Code Implementation\n```python\nimport torch\nimport torch.nn as nn\n\n\n"
        "class ModelNew(nn.Module):\n    def __init__(self):\n        super().__init__()\n\n"
        f"    def forward(self, {ARGS[task_id]}):\n        return {ANSWERS[task_id]}\n```\n"
    )


def missing(*mods: str) -> list[str]:
    out = []
    for m in mods:
        try:
            importlib.import_module(m)
        except Exception:  # noqa: BLE001
            out.append(m)
    return out


def gpu_peak_reset():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def gpu_peak_gib() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def time_limit_callback(seconds: float):
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.deadline = time.perf_counter() + seconds

        def on_step_end(self, args, state, control, **kw):
            if time.perf_counter() > self.deadline:
                control.should_training_stop = True

    return Stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="time budget per stage (default 60)")
    ap.add_argument("--device", default="auto", help="judge device: auto, cpu, cuda")
    ap.add_argument("--size", default=None, choices=["full", "smoke"], help="task size (default: full on GPU, smoke on CPU)")
    ap.add_argument("--tasks", default="level1/1_Square_Matmul,level1/19_Swish", help="comma-separated task ids")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--sft-steps", type=int, default=300, help="most SFT steps (also bounded by --seconds)")
    ap.add_argument("--num-generations", type=int, default=8, help="GRPO group size")
    ap.add_argument("--stages", default="sft,generate,judge,self,grpo,rl")
    ap.add_argument("--workdir", default=None, help="where models and runs go (default: a temp dir)")
    ap.add_argument("--out", default="train_throughput.json")
    args = ap.parse_args()

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from cudal1.judge.device import device_name, resolve_device

    device = resolve_device(args.device)
    size = args.size or ("full" if device.startswith("cuda") else "smoke")
    task_ids = [t.strip() for t in args.tasks.split(",") if t.strip()]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cudal1-train-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    versions = {}
    for m in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers"):
        try:
            versions[m] = importlib.import_module(m).__version__
        except Exception as e:  # noqa: BLE001
            versions[m] = f"missing ({type(e).__name__})"
    report = {"device": device_name(device), "judge_device": device, "size": size, "tasks": task_ids,
              "seconds_per_stage": args.seconds, "python": platform.python_version(), "versions": versions, "stages": {}}

    def record(stage: str, data: dict):
        report["stages"][stage] = data
        print(f"[{stage}] " + json.dumps(data), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # after every stage: a run cut off keeps it
        Path(args.out).write_text(json.dumps(report, indent=2, default=str))

    if missing("transformers", "tokenizers"):
        for s in stages:
            record(s, {"status": "skipped", "reason": "transformers/tokenizers not installed"})
        return finish(report, args.out)

    import transformers

    transformers.logging.set_verbosity_error()
    from cudal1.train.common import first_prompt, prompt_device
    from cudal1.train.config import (
        JudgeOptions,
        ModelConfig,
        RLConfig,
        SamplingArgs,
        SelfTrainConfig,
        TaskSelection,
        TrainArgs,
    )
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the scratch model is a test fixture
    from scratch_model import build_scratch_model, parameter_count

    tasks_sel = TaskSelection(ids=task_ids, size=size)
    from cudal1.train.common import select_tasks

    tasks = select_tasks(tasks_sel)
    shown = prompt_device(device)
    prompts = {t.id: first_prompt(t, shown).text for t in tasks}
    records = [{"task_id": t.id, "prompt": prompts[t.id], "completion": answer(t.id)} for t in tasks]
    judge_opts = JudgeOptions(device=device, quick=not device.startswith("cuda"), build_workers=4)

    t0 = time.perf_counter()
    base = build_scratch_model(work / "base", list(prompts.values()) * 4 + [r["completion"] for r in records] * 4,
                               vocab_size=args.vocab, hidden=args.hidden, layers=args.layers, heads=args.heads)
    report["model"] = {"parameters": parameter_count(base), "hidden": args.hidden, "layers": args.layers,
                       "vocab": args.vocab, "build_s": round(time.perf_counter() - t0, 2)}
    print(f"model: {report['model']}", flush=True)
    model_cfg = ModelConfig(path=base, dtype="auto")

    state = {"trained": base}  # the SFT output, when that stage ran, is what later stages start from

    def run_stage(stage: str, body, needs: tuple[str, ...] = ()):
        """Record ``stage`` as skipped (a package missing), ok (with what ``body`` measured) or error."""
        if stage not in stages:
            return
        lack = missing(*needs)
        if lack:
            record(stage, {"status": "skipped", "reason": f"missing {', '.join(lack)}"})
            return
        try:
            record(stage, {"status": "ok", **body()})
        except Exception as e:  # noqa: BLE001
            record(stage, {"status": "error", "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]})

    def sft() -> dict:
        from cudal1.train.sft import fine_tune

        gpu_peak_reset()
        batch = 4
        r = fine_tune(model_cfg, records * 4, str(work / "sft"), TrainArgs(
            learning_rate=2e-3, max_steps=args.sft_steps, batch_size=batch, logging_steps=10, save_steps=10**6,
            warmup_ratio=0.0, lr_scheduler="constant", max_length=4096), resume=False,
            callbacks=[time_limit_callback(args.seconds)])
        state["trained"] = r.final_dir
        return {"steps": r.global_step, "seconds": round(r.train_seconds, 2),
                "samples_per_s": round(r.global_step * batch / r.train_seconds, 2),
                "tokens_per_s": round(r.tokens / r.train_seconds, 1) if r.tokens else None,
                "first_loss": r.first_loss, "last_loss": r.last_loss, "peak_gpu_gib": gpu_peak_gib()}

    def generate_stage() -> dict:
        from cudal1.train.common import parse_source
        from cudal1.train.generation import generate
        from cudal1.train.modeling import load_model, load_tokenizer

        tok = load_tokenizer(ModelConfig(path=state["trained"]))
        model = load_model(ModelConfig(path=state["trained"], dtype="auto"))
        if torch.cuda.is_available():
            model = model.to("cuda")
        gpu_peak_reset()
        sampling = SamplingArgs(num_samples=8, temperature=0.5, max_new_tokens=256, batch_size=32)
        n = toks = 0
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            out = generate(model, tok, list(prompts.values()), sampling)
            n += len(out)
            toks += sum(s.completion_tokens for s in out)
        secs = time.perf_counter() - start
        parsed = sum(parse_source(s.text) is not None for s in out)
        return {"completions": n, "seconds": round(secs, 2),
                "completions_per_s": round(n / secs, 2), "new_tokens_per_s": round(toks / secs, 1),
                "parsable_share_last_batch": round(parsed / max(1, len(out)), 3),
                "peak_gpu_gib": gpu_peak_gib()}

    def judge_stage() -> dict:
        from cudal1.train.common import parse_source
        from cudal1.train.judging import JudgePool

        pool = JudgePool(judge_opts)
        jobs = [(t, parse_source(answer(t.id))) for t in tasks]
        verdicts = []
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            # distinct sources each round (a comment changes the hash) so nothing is cached
            rnd = len(verdicts)
            verdicts += pool.evaluate([(t, s + f"# round {rnd}\n") for t, s in jobs])
        secs = time.perf_counter() - start
        return {"evaluations": len(verdicts), "seconds": round(secs, 2),
                "evaluations_per_s": round(len(verdicts) / secs, 3),
                "verdicts": sorted({v.verdict for v in verdicts}),
                "findings": sorted({f"{f.severity}:{f.id}" for v in verdicts for f in v.findings}),
                "eval_s": [v.eval_s for v in verdicts[: len(tasks)]], "build_s": [v.build_s for v in verdicts[: len(tasks)]],
                "speedups": [v.speedup for v in verdicts[: len(tasks)]]}

    def self_stage() -> dict:
        from cudal1.train.self_train import run_self_train

        gpu_peak_reset()
        cfg = SelfTrainConfig(model=ModelConfig(path=state["trained"]), tasks=tasks_sel, judge=judge_opts, db=str(work / "self.db"),
                              output_dir=str(work / "self"), iterations=1,
                              sampling=SamplingArgs(num_samples=8, temperature=0.5, max_new_tokens=256, batch_size=32),
                              train=TrainArgs(learning_rate=1e-4, max_steps=20, batch_size=4, logging_steps=5,
                                              save_steps=10**6, max_length=4096))
        start = time.perf_counter()
        r = run_self_train(cfg)
        secs = time.perf_counter() - start
        it = r.iterations[0]
        return {"seconds": round(secs, 2), "samples": it.samples, "judged": it.judged,
                "kept": it.kept, "sample_s": round(it.sample_seconds, 2), "judge_s": round(it.judge_seconds, 2),
                "train_s": round(it.train_seconds, 2),
                "samples_per_s": round(it.samples / it.sample_seconds, 2) if it.sample_seconds else None,
                "evaluations_per_s": round(it.judged / it.judge_seconds, 3) if it.judge_seconds else None,
                "peak_gpu_gib": gpu_peak_gib()}

    def grpo_stage() -> dict:  # synthetic reward: the trainer's own throughput
        from datasets import Dataset

        from cudal1.train.modeling import load_model, load_tokenizer
        from cudal1.train.rl import grpo_trainer

        cfg = RLConfig(model=ModelConfig(path=state["trained"]), output_dir=str(work / "grpo"), num_generations=args.num_generations,
                       prompts_per_step=2, max_steps=10**6, learning_rate=1e-5, beta=0.04, max_completion_length=256,
                       save_steps=10**6, logging_steps=1)
        tok = load_tokenizer(cfg.model)
        model = load_model(cfg.model)
        calls = []

        def length_reward(prompts, completions, completion_ids, **kw):
            calls.append(len(completions))
            return [len(c) / 256 for c in completion_ids]

        data = Dataset.from_dict({"prompt": list(prompts.values()) * 64})
        gpu_peak_reset()
        tr = grpo_trainer(cfg, model, tok, [length_reward], data, [time_limit_callback(args.seconds)])
        start = time.perf_counter()
        tr.train()
        secs = time.perf_counter() - start
        return {"steps": tr.state.global_step, "seconds": round(secs, 2),
                "completions_per_s": round(sum(calls) / secs, 2), "steps_per_s": round(tr.state.global_step / secs, 3),
                "peak_gpu_gib": gpu_peak_gib()}

    def rl_stage() -> dict:  # judge reward
        from cudal1.train.rl import run_rl

        cfg = RLConfig(model=ModelConfig(path=state["trained"]), tasks=tasks_sel, judge=judge_opts, db=str(work / "rl.db"),
                       output_dir=str(work / "rl"), num_generations=args.num_generations, prompts_per_step=1,
                       max_steps=10**6, learning_rate=1e-5, beta=0.04, max_completion_length=256, temperature=0.5,
                       save_steps=10**6, logging_steps=1)
        gpu_peak_reset()
        start = time.perf_counter()
        r = run_rl(cfg, callbacks=[time_limit_callback(args.seconds)])
        secs = time.perf_counter() - start
        completions = r.global_step * cfg.num_generations * cfg.prompts_per_step
        return {"steps": r.global_step, "seconds": round(secs, 2),
                "completions_per_s": round(completions / r.train_seconds, 2) if r.train_seconds else None,
                "judge_evaluations": r.judge_evaluations,
                "evaluations_per_s": round(r.judge_evaluations / r.judge_seconds, 3) if r.judge_seconds else None,
                "judge_share_of_time": round(r.judge_seconds / r.train_seconds, 3) if r.train_seconds else None,
                "outcomes": r.outcomes,
                "accepted_share": round(r.outcomes.get("accepted", 0) / max(1, sum(r.outcomes.values())), 3),
                "mean_raw_reward": [round(x, 3) for x in r.rewards[:3]] + (["..."] if len(r.rewards) > 6 else [])
                + [round(x, 3) for x in r.rewards[-3:]],
                "peak_gpu_gib": gpu_peak_gib()}

    trainer_packages = ("trl", "datasets")
    run_stage("sft", sft, trainer_packages)
    run_stage("generate", generate_stage)
    run_stage("judge", judge_stage)
    run_stage("self", self_stage, trainer_packages)
    run_stage("grpo", grpo_stage, trainer_packages)
    run_stage("rl", rl_stage, trainer_packages)

    return finish(report, args.out)


def finish(report: dict, out: str) -> int:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2, default=str))
    print(f"\n{'stage':10} {'status':8} key numbers   ({report['device']}; torch {report['versions'].get('torch')})")
    keys = ("samples_per_s", "tokens_per_s", "completions_per_s", "new_tokens_per_s", "evaluations_per_s", "steps_per_s",
            "peak_gpu_gib")
    for stage, d in report["stages"].items():
        nums = ", ".join(f"{k}={d[k]}" for k in keys if d.get(k) is not None)
        print(f"{stage:10} {d['status']:8} {nums or d.get('reason') or d.get('error', '')}")
    skipped = [s for s, d in report["stages"].items() if d["status"] == "skipped"]
    if skipped:
        print(f"not run: {', '.join(skipped)} (install the missing packages, e.g. pip install trl datasets)")
    print(f"wrote {out}")
    return 0 if all(d["status"] != "error" for d in report["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
