"""Supervised fine-tuning on (prompt, completion) records with TRL's SFTTrainer (LoRA optional).

Used by stage 1 (`train sft`) and by every iteration of stage 2 (`train self`). Resumes from the
newest checkpoint in the output folder; the final model (LoRA merged) goes to ``OUTPUT/final``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from .checkpoint import latest_checkpoint, read_jsonl
from .config import ModelConfig, SFTConfig, TrainArgs
from .metrics import MetricsWriter, metrics_callback
from .modeling import (
    load_model,
    load_tokenizer,
    model_completion,
    model_prompt,
    peft_config,
    require,
    save_final,
    trl_args,
    use_bf16,
)

log = logging.getLogger(__name__)


@dataclass
class SFTResult:
    output_dir: str
    final_dir: str
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss) as logged
    global_step: int = 0
    records: int = 0
    resumed_from: str | None = None
    train_seconds: float = 0.0
    tokens: int = 0

    @property
    def first_loss(self) -> float | None:
        return self.losses[0][1] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None


def load_records(paths: list[str]) -> list[dict]:
    """Records of the given JSONL files; each needs ``prompt`` and ``completion`` strings."""
    out = []
    for p in paths:
        if not Path(p).exists():
            raise FileNotFoundError(f"SFT data {p} not found (write it with `cudal1 train sft-data` or `cudal1 train self`)")
        for i, r in enumerate(read_jsonl(p)):
            if not isinstance(r.get("prompt"), str) or not isinstance(r.get("completion"), str):
                raise ValueError(f"{p}: record {i + 1} lacks prompt/completion strings")
            out.append(r)
    return out


def build_dataset(records: list[dict], tokenizer):
    require("datasets")
    from datasets import Dataset

    return Dataset.from_dict({
        "prompt": [model_prompt(tokenizer, r["prompt"]) for r in records],
        "completion": [model_completion(tokenizer, r["completion"]) for r in records],
    })


def fine_tune(model_cfg: ModelConfig, records: list[dict], output_dir: str, train: TrainArgs, *,
              resume: bool = True, stage: str = "sft", metrics_extra: dict | None = None,
              model_path: str | None = None, callbacks: list = ()) -> SFTResult:
    """Fine-tune ``model_path`` (default ``model_cfg.path``) on ``records``; save to ``output_dir/final``."""
    require("transformers", "trl", "datasets")
    if not records:
        raise ValueError("no SFT records to train on")
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(model_cfg, model_path)
    model = load_model(model_cfg, model_path)
    dataset = build_dataset(records, tokenizer)
    args = trl_args(TRLSFTConfig, dict(
        output_dir=str(out),
        learning_rate=train.learning_rate,
        num_train_epochs=train.epochs,
        max_steps=train.max_steps,
        per_device_train_batch_size=train.batch_size,
        gradient_accumulation_steps=train.gradient_accumulation_steps,
        max_length=train.max_length,
        warmup_ratio=train.warmup_ratio,
        weight_decay=train.weight_decay,
        lr_scheduler_type=train.lr_scheduler,
        completion_only_loss=train.completion_only_loss,
        bf16=use_bf16(train.bf16),
        logging_steps=train.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=train.save_steps,
        save_total_limit=train.save_total_limit,
        seed=train.seed,
        report_to="none",
        gradient_checkpointing=model_cfg.gradient_checkpointing,  # TRL turns it on by default
        dataset_num_proc=None,
    ), train.extra)
    writer = MetricsWriter(out, stage)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config(model_cfg), callbacks=[metrics_callback(writer, metrics_extra), *callbacks])
    ckpt = latest_checkpoint(out) if resume else None
    if ckpt:
        log.info("resuming %s from %s", stage, ckpt)
    start = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=ckpt)
    seconds = time.perf_counter() - start
    final = save_final(trainer, tokenizer, str(out / "final"))
    history = trainer.state.log_history
    losses = [(int(h["step"]), float(h["loss"])) for h in history if "loss" in h]
    # TRL logs the running count of tokens trained on as num_tokens.
    tokens = int(max((h.get("num_tokens", 0) for h in history), default=0) or 0)
    writer.write(trainer.state.global_step, {**(metrics_extra or {}), **output.metrics, "records": len(records)})
    writer.close()
    return SFTResult(str(out), final, losses, trainer.state.global_step, len(records), ckpt, seconds, tokens)


def run_sft(cfg: SFTConfig) -> SFTResult:
    """Stage 1b (`cudal1 train sft`)."""
    cfg.check()
    records = load_records(cfg.data)
    return fine_tune(cfg.model, records, cfg.output_dir, cfg.train, resume=cfg.resume, stage="sft")
