"""Configs of the three training stages: dataclasses whose every field carries its help text.

One YAML file per run (``cudal1 train STAGE --config FILE``) maps onto one of the top-level
configs below (`SFTDataConfig`, `SFTConfig`, `SelfTrainConfig`, `RLConfig`); ``KEY=VALUE``
overrides with dotted keys (``reward.clip=2.0``) are applied on top. Unknown keys are errors
that list the known ones. Fields, loading and tables come from `cudal1.config_fields`; the same
field metadata renders the tables in docs/training.md (`config_markdown`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..config_fields import ConfigError, check_choices, from_dict, markdown_table
from ..config_fields import section as _sub
from ..config_fields import setting as _f
from ..config_fields import config_table as config_table  # re-exported: callers read training tables from here
from ..search.exemplars import METHODS as EXEMPLAR_METHODS
from ..search.options import LLMOptions


# --- shared parts ------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    path: str | None = _f(None, "Base model: a local folder (config.json, weights, tokenizer) or a Hugging Face id. Required.")
    tokenizer: str | None = _f(None, "Tokenizer folder or id when it differs from `path`.")
    dtype: str = _f("auto", "Weights dtype: auto, float32, bfloat16 or float16.")
    lora: bool = _f(False, "Train LoRA adapters (PEFT) instead of all weights.")
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA alpha (scale = alpha / r).")
    lora_dropout: float = _f(0.05, "LoRA dropout.")
    lora_target_modules: str | list[str] = _f("all-linear", "Modules that get adapters: 'all-linear' or a list of names.")
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass (less memory, ~30% slower).")
    attn_implementation: str | None = _f(None, "Attention kernel (e.g. sdpa, flash_attention_2); None = transformers' default.")

    def check(self, where: str) -> None:
        if not self.path:
            raise ConfigError(f"{where}.path is required: a local model folder or a Hugging Face id (e.g. model.path=./my-model)")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"{where}.dtype must be auto, float32, bfloat16 or float16, not {self.dtype!r}")
        if self.lora and self.lora_r < 1:
            raise ConfigError(f"{where}.lora_r must be at least 1")


@dataclass
class TaskSelection:
    suite: str = _f("builtin", "'builtin' or a KernelBench checkout (folder with level1/, level2/, ...).")
    ids: list[str] = _f([], "Task ids (levelN/ID_Name) to train on; empty = every task of the suite (and level).")
    level: int | None = _f(None, "Only tasks of this level.")
    size: str = _f("full", "Problem size: full, or smoke (tiny, for CPU runs and tests).")

    def check(self, where: str) -> None:
        if self.size not in ("full", "smoke"):
            raise ConfigError(f"{where}.size must be full or smoke, not {self.size!r}")


@dataclass
class JudgeOptions:
    device: str = _f("auto", "Device the judge measures on: auto, cpu, cuda or cuda:N.")
    quick: bool = _f(False, "Fewer correctness trials and timed calls (JudgeConfig.quick): smoke runs and tests only.")
    build_workers: int = _f(2, "CPU processes building candidates while others are measured.")
    backend: str = _f("local", "Where rewards are measured: local (evaluate_many on this machine) or ray (one actor per GPU).")
    ray_address: str | None = _f(None, "Ray cluster address (backend=ray); None = start or join the local one.")
    ray_workers: int = _f(0, "Ray judge actors (backend=ray); 0 = one per GPU in the cluster.")
    settings: dict = _f({}, "JudgeConfig fields to override, e.g. {timed_calls: 50, atol: 1e-3}.")

    def check(self, where: str) -> None:
        if self.backend not in ("local", "ray"):
            raise ConfigError(f"{where}.backend must be local or ray, not {self.backend!r}")
        if self.build_workers < 1:
            raise ConfigError(f"{where}.build_workers must be at least 1")
        from ..judge.config import JudgeConfig

        unknown = set(self.settings) - {f.name for f in dataclasses.fields(JudgeConfig)}
        if unknown:
            raise ConfigError(f"{where}.settings has unknown JudgeConfig fields {sorted(unknown)}")
        JudgeConfig.from_dict(self.settings, prefix=f"{where}.settings")  # types and the judge's own checks

    def judge_config(self):
        from ..judge.config import JudgeConfig

        settings = vars(JudgeConfig.from_dict(self.settings))
        given = {k: settings[k] for k in self.settings}  # converted (YAML's 1e-3 is a string)
        return JudgeConfig.quick(**given) if self.quick else JudgeConfig(**given)


@dataclass
class TrainArgs:
    """Optimizer and checkpoint settings shared by the SFT and self-training fine-tunes."""

    learning_rate: float = _f(2e-5, "Peak learning rate (LoRA usually wants ~1e-4).")
    epochs: float = _f(2.0, "Passes over the dataset (ignored when max_steps > 0).")
    max_steps: int = _f(-1, "Optimizer steps; -1 = run `epochs` passes.")
    batch_size: int = _f(4, "Sequences per device per step.")
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.")
    max_length: int = _f(4096, "Longest prompt+completion in tokens; longer records are truncated.")
    warmup_ratio: float = _f(0.03, "Share of steps spent warming up the learning rate.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    lr_scheduler: str = _f("cosine", "Learning-rate schedule (transformers' names: cosine, linear, constant, ...).")
    completion_only_loss: bool = _f(True, "Compute the loss on completion tokens only (the prompt is context).")
    bf16: bool | None = _f(None, "Mixed precision bf16; None = on when a GPU supports it.")
    logging_steps: int = _f(10, "Log metrics every this many steps.")
    save_steps: int = _f(200, "Write a trainer checkpoint every this many steps (resume point).")
    save_total_limit: int | None = _f(2, "Keep at most this many checkpoints.")
    seed: int = _f(0, "Random seed.")
    extra: dict = _f({}, "Other TRL SFTConfig fields, passed through unchanged.")

    def check(self, where: str) -> None:
        if self.learning_rate <= 0:
            raise ConfigError(f"{where}.learning_rate must be positive")
        if self.batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ConfigError(f"{where}.batch_size and gradient_accumulation_steps must be at least 1")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ConfigError(f"{where}: set epochs > 0 or max_steps > 0")


# --- stage 1: SFT data ---------------------------------------------------------------------------


@dataclass
class SFTDataConfig:
    """Stage 1a: teacher LLMs write variants of each reference; judged-correct ones become SFT records."""

    output: str = _f("runs/sft-data/sft.jsonl", "Where the (prompt, completion) records are written (JSONL, appended).")
    teachers: list[LLMOptions] = _f([], "Teacher LLMs (OpenAI-compatible servers or hf:PATH): base_url, model, temperature, ...")
    tasks: TaskSelection = _sub(TaskSelection, "Which tasks the teachers rewrite.")
    judge: JudgeOptions = _sub(JudgeOptions, "How candidates are judged.")
    db: str | None = _f(None, "Store path for every judged candidate (None = $CUDAL1_DB or ./.cudal1/cudal1.db in the working directory; '' = no store).")
    keep_per_task: int = _f(2, "Keep at most this many variants per task (CUDA-L1: 2).")
    max_attempts_per_teacher: int = _f(20, "Stop asking a teacher about a task after this many attempts (CUDA-L1: 20).")
    attempts_per_round: int = _f(4, "Requests sent to one teacher for one task at a time.")
    keep: str = _f("correct", "Which verdicts are kept: correct (right outputs, no hack, any speed), accepted (the judge accepted it) or faster (accepted, speedup > 1).")
    template: str | None = _f(None, "Prompt template version (policies/templates); None = the current default.")

    def check(self) -> None:
        if not self.teachers:
            raise ConfigError("teachers is empty: add at least one teacher, e.g. teachers: [{base_url: http://localhost:8000/v1, model: NAME}]")
        for i, t in enumerate(self.teachers):
            if not t.model:
                raise ConfigError(f"teachers[{i}].model is required")
        if self.keep not in ("correct", "accepted", "faster"):
            raise ConfigError(f"keep must be correct, accepted or faster, not {self.keep!r}")
        if self.keep_per_task < 1 or self.max_attempts_per_teacher < 1 or self.attempts_per_round < 1:
            raise ConfigError("keep_per_task, max_attempts_per_teacher and attempts_per_round must be at least 1")
        self.tasks.check("tasks")
        self.judge.check("judge")


# --- stage 1: SFT --------------------------------------------------------------------------------


@dataclass
class SFTConfig:
    """Stage 1b: supervised fine-tuning of the base model on the SFT records (TRL SFTTrainer)."""

    model: ModelConfig = _sub(ModelConfig, "The model to fine-tune.")
    data: list[str] = _f([], "JSONL files of {prompt, completion} records (from `train sft-data` or `train self`).")
    output_dir: str = _f("runs/sft", "Checkpoints, metrics (metrics.jsonl, tensorboard/) and the final model (final/).")
    train: TrainArgs = _sub(TrainArgs, "Optimizer and checkpoint settings.")
    resume: bool = _f(True, "Continue from the newest checkpoint in output_dir when there is one.")

    def check(self) -> None:
        self.model.check("model")
        if not self.data:
            raise ConfigError("data is empty: give the JSONL file(s) written by `cudal1 train sft-data` (data=[runs/sft-data/sft.jsonl])")
        self.train.check("train")


# --- stage 2: self-training ----------------------------------------------------------------------


@dataclass
class SamplingArgs:
    num_samples: int = _f(8, "Samples per task per iteration.")
    temperature: float = _f(0.8, "Sampling temperature; 0 = greedy (then one sample per task is enough).")
    top_p: float = _f(0.95, "Nucleus sampling threshold.")
    max_new_tokens: int = _f(2048, "Completion token limit.")
    batch_size: int = _f(8, "Prompts x samples generated in one generate() call.")


@dataclass
class SelfTrainConfig:
    """Stage 2: sample from the current model, judge, keep the successes, fine-tune on them; repeat."""

    model: ModelConfig = _sub(ModelConfig, "The starting model (usually the stage-1 SFT output, .../final).")
    tasks: TaskSelection = _sub(TaskSelection, "Which tasks are sampled.")
    judge: JudgeOptions = _sub(JudgeOptions, "How samples are judged.")
    db: str | None = _f(None, "Store path for every judged sample (None = default store; '' = no store).")
    output_dir: str = _f("runs/self", "Per-iteration samples, datasets, checkpoints and models; state.json for resume.")
    iterations: int = _f(3, "Sample -> judge -> fine-tune iterations.")
    sampling: SamplingArgs = _sub(SamplingArgs, "How the current model is sampled.")
    keep: str = _f("correct", "Which samples are kept: correct, accepted or faster (see sft-data's keep).")
    keep_per_task: int = _f(4, "Most successes kept per task per iteration (duplicates dropped).")
    cumulative: bool = _f(True, "Fine-tune on the successes of all iterations so far, not only the latest one.")
    extra_data: list[str] = _f([], "JSONL records mixed into every fine-tune (e.g. the stage-1 data).")
    template: str | None = _f(None, "Prompt template version; None = the current default.")
    train: TrainArgs = _sub(TrainArgs, "Fine-tune settings of each iteration.")

    def check(self) -> None:
        self.model.check("model")
        self.tasks.check("tasks")
        self.judge.check("judge")
        self.train.check("train")
        if self.iterations < 1:
            raise ConfigError("iterations must be at least 1")
        if self.keep not in ("correct", "accepted", "faster"):
            raise ConfigError(f"keep must be correct, accepted or faster, not {self.keep!r}")
        if self.sampling.num_samples < 1 or self.sampling.batch_size < 1:
            raise ConfigError("sampling.num_samples and sampling.batch_size must be at least 1")


# --- stage 3: RL ---------------------------------------------------------------------------------


@dataclass
class RewardConfig:
    """From a verdict to a reward: smoothed speedup, fixed penalty for failures, group-normalized and clipped."""

    buckets: int = _f(7, "Timing samples are split into this many buckets (CUDA-L1: 7).")
    variance_cut: float = _f(0.005, "A bucket is discarded when the variance of its times, relative to its mean squared, is above this (CUDA-L1: 0.005).")
    round_digits: int = _f(2, "Smoothed speedups are rounded to this many decimals, toward 1 (conservative).")
    transform: str = _f("speedup", "Raw reward of an accepted candidate: speedup, or log (natural log of the speedup).")
    failure_reward: float = _f(-1.0, "Raw reward of a candidate that does not build, run, or match the reference.")
    hack_reward: float = _f(-1.0, "Raw reward of a candidate the judge rejected (a hack finding).")
    unparsable_reward: float = _f(-1.0, "Raw reward of a response with no ModelNew code in it.")
    normalize: bool = _f(True, "Normalize rewards within each group of completions of one prompt ((r - mean) / std).")
    clip: float = _f(1.5, "Normalized rewards are clipped to [-clip, clip] (CUDA-L1: k = 1.5).")

    def check(self, where: str = "reward") -> None:
        if self.buckets < 1:
            raise ConfigError(f"{where}.buckets must be at least 1")
        if self.variance_cut <= 0:
            raise ConfigError(f"{where}.variance_cut must be positive")
        if self.transform not in ("speedup", "log"):
            raise ConfigError(f"{where}.transform must be speedup or log, not {self.transform!r}")
        if self.clip <= 0:
            raise ConfigError(f"{where}.clip must be positive")


@dataclass
class RLConfig:
    """Stage 3: GRPO on contrastive prompts built live from the store, rewarded by the judge."""

    model: ModelConfig = _sub(ModelConfig, "The policy to train (usually the stage-2 output).")
    tasks: TaskSelection = _sub(TaskSelection, "Which tasks prompts are built for.")
    judge: JudgeOptions = _sub(JudgeOptions, "How completions are judged (the reward).")
    db: str | None = _f(None, "Store the exemplars come from and every judged completion goes to (None = default store).")
    output_dir: str = _f("runs/rl", "Checkpoints, metrics (metrics.jsonl, tensorboard/) and the final model (final/).")
    reward: RewardConfig = _sub(RewardConfig, "How verdicts become rewards.")
    # prompts
    exemplars: int = _f(2, "Earlier implementations with their speedups shown in each prompt (CUDA-L1: N = 2).")
    exemplar_selection: str = _f("bucket", "How exemplars are drawn (docs/llm.md).", choices=EXEMPLAR_METHODS)
    tau: float = _f(1.0, "Bucket-sampling temperature.")
    template: str | None = _f(None, "Contrastive prompt template version; None = the current default.")
    # GRPO
    num_generations: int = _f(8, "Completions per prompt (the GRPO group).")
    beta: float = _f(0.04, "KL coefficient against the reference policy; 0 = no reference model (saves memory).")
    learning_rate: float = _f(1e-6, "Peak learning rate.")
    max_steps: int = _f(500, "Optimizer steps (prompts are drawn live, so there is no epoch).")
    prompts_per_step: int = _f(2, "Distinct prompts per device per optimizer step (batch = prompts_per_step x num_generations).")
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.")
    num_iterations: int = _f(1, "Optimizer passes over each generated batch (GRPO's mu).")
    epsilon: float = _f(0.2, "PPO-style clipping of the probability ratio.")
    loss_type: str = _f("dapo", "TRL GRPO loss aggregation: grpo, dapo, dr_grpo, bnpo, ...")
    temperature: float = _f(1.0, "Sampling temperature of the policy.")
    top_p: float = _f(1.0, "Nucleus sampling threshold.")
    max_completion_length: int = _f(4096, "Completion token limit (analysis + design + code).")
    use_vllm: bool = _f(False, "Generate with vLLM (TRL's use_vllm): colocate or a separate `trl vllm-serve` server.")
    vllm_mode: str = _f("colocate", "vLLM mode: colocate (same GPUs) or server (vllm_server_base_url).")
    vllm_server_base_url: str | None = _f(None, "URL of `trl vllm-serve` when vllm_mode=server.")
    bf16: bool | None = _f(None, "Mixed precision bf16; None = on when a GPU supports it.")
    logging_steps: int = _f(1, "Log metrics every this many steps.")
    save_steps: int = _f(50, "Write a trainer checkpoint every this many steps (resume point).")
    save_total_limit: int | None = _f(3, "Keep at most this many checkpoints.")
    seed: int = _f(0, "Random seed.")
    resume: bool = _f(True, "Continue from the newest checkpoint in output_dir when there is one.")
    trl: dict = _f({}, "Other TRL GRPOConfig fields, passed through unchanged.")

    def check(self) -> None:
        self.model.check("model")
        self.tasks.check("tasks")
        self.judge.check("judge")
        self.reward.check("reward")
        if self.num_generations < 2:
            raise ConfigError("num_generations must be at least 2: GRPO compares completions within a group")
        check_choices(self)
        if self.max_steps < 1 or self.prompts_per_step < 1:
            raise ConfigError("max_steps and prompts_per_step must be at least 1")
        if self.vllm_mode not in ("colocate", "server"):
            raise ConfigError(f"vllm_mode must be colocate or server, not {self.vllm_mode!r}")


STAGE_CONFIGS = {"sft-data": SFTDataConfig, "sft": SFTConfig, "self": SelfTrainConfig, "rl": RLConfig}


# --- loading -------------------------------------------------------------------------------------


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def apply_override(data: dict, assignment: str) -> None:
    """``a.b.c=VALUE`` into nested ``data``; VALUE is read as YAML (numbers, true/false, lists)."""
    import yaml

    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not KEY=VALUE (e.g. reward.clip=2.0)")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {assignment!r}: {p} is not a section")
    node[parts[-1]] = value


def load_config(cls, path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), check: bool = True):
    """Read a YAML config file into ``cls``, apply ``KEY=VALUE`` overrides, validate with ``check()``."""
    import yaml

    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} not found (examples: cudal1/train/configs/*.yaml)")
        with open(p) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of config keys")
    for o in overrides:
        apply_override(data, o)
    cfg = from_dict(cls, data)
    if check:
        cfg.check()
    return cfg


def config_markdown() -> str:
    """The config reference of docs/training.md (generated from the field help; a test keeps them equal)."""
    out = []
    for stage, cls in STAGE_CONFIGS.items():
        out.append(f"### `cudal1 train {stage}` ({cls.__name__})\n\n{(cls.__doc__ or '').strip()}\n")
        out.append(markdown_table(cls))
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":  # python -m cudal1.train.config > reference section of docs/training.md
    print(config_markdown())
