"""Stage 3 (`cudal1 train rl`): GRPO on contrastive prompts built live from the store, rewarded by the judge.

Prompts are not a fixed dataset: a generator draws the next task, takes the task's earlier
judged candidates from the store, picks ``exemplars`` of them by bucket sampling and renders
the contrastive prompt (reference + earlier codes with their speedups; answer = analysis,
design, code). Every judged completion goes back into the store, so later prompts show what
the policy found. The reward is `JudgeReward` (smoothed speedup, fixed penalty for failures
and hacks, group-normalized, clipped to [-k, k]); TRL then only centers it per group
(``scale_rewards="none"``), since the normalization already happened.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..tasks.contract import Task
from .checkpoint import checkpoint_step, latest_checkpoint
from .common import StoreRecorder, parse_source, prompt_device, select_tasks
from .config import RLConfig, to_dict
from .judging import JudgePool
from .metrics import MetricsWriter, metrics_callback
from .modeling import (
    load_model,
    load_tokenizer,
    model_prompt,
    peft_config,
    require,
    save_final,
    trl_args,
    use_bf16,
)
from .reward import JudgeReward

log = logging.getLogger(__name__)


@dataclass
class RLResult:
    output_dir: str
    final_dir: str
    global_step: int = 0
    resumed_from: str | None = None
    train_seconds: float = 0.0
    judge_evaluations: int = 0
    judge_seconds: float = 0.0
    rewards: list = field(default_factory=list)  # mean raw reward per reward call
    outcomes: dict = field(default_factory=dict)  # completions per outcome (accepted, rejected, ...) over the run

    def to_json(self) -> dict:
        return asdict(self)


def contrastive_prompts(tasks: list[Task], history: Callable[[Task], list], *, exemplars: int, selection: str,
                        tau: float, device: str, seed: int, template: str | None = None) -> Iterator[dict]:
    """Endless ``{"prompt_text", "task_id", "exemplars"}`` rows: tasks in shuffled rounds, exemplars drawn from ``history(task)``."""
    from ..policies.llm.prompts import CONTRASTIVE, render_search_prompt
    from ..search.exemplars import PoolItem, select_exemplars

    rng = random.Random(seed)
    while True:
        order = list(tasks)
        rng.shuffle(order)
        for task in order:
            items = [PoolItem(a) for a in history(task)]
            chosen = select_exemplars(selection, items, exemplars, rng, tau=tau)
            prompt = render_search_prompt(task, chosen, device=device, contrastive=template or CONTRASTIVE)
            yield {"prompt_text": prompt.text, "task_id": task.id, "exemplars": len(chosen),
                   "template_version": prompt.template_version}


# Live prompt sources by key: `datasets` fingerprints a generator by pickling it, and the rows
# factory holds the store's connection, so the generator it pickles only carries this key.
_SOURCES: dict[str, Callable[[], Iterator[dict]]] = {}


def _stream_rows(source: str):
    yield from _SOURCES[source]()


def prompt_stream(rows: Callable[[], Iterator[dict]], tokenizer):
    """A datasets.IterableDataset over ``rows()``, prompts formatted for the model (chat or plain).

    The rows are drawn in this process, when the trainer asks for the next batch (so they see
    the store as it is then); the dataloader must not use worker processes.
    """
    require("datasets")
    import uuid

    from datasets import IterableDataset

    key = uuid.uuid4().hex

    def formatted():
        for r in rows():
            yield {"prompt": model_prompt(tokenizer, r["prompt_text"]), "task_id": r["task_id"]}

    _SOURCES[key] = formatted
    return IterableDataset.from_generator(_stream_rows, gen_kwargs={"source": key})


def grpo_trainer(cfg: RLConfig, model, tokenizer, reward_funcs: list, train_dataset, callbacks: list = ()):
    """A TRL GRPOTrainer configured from ``cfg`` (shared by `run_rl`, the tests and the benchmark)."""
    require("trl")
    from trl import GRPOConfig, GRPOTrainer

    args = trl_args(GRPOConfig, dict(
        output_dir=cfg.output_dir,
        learning_rate=cfg.learning_rate,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_generations=cfg.num_generations,
        beta=cfg.beta,
        num_iterations=cfg.num_iterations,
        epsilon=cfg.epsilon,
        loss_type=cfg.loss_type,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_completion_length=cfg.max_completion_length,
        scale_rewards="none" if cfg.reward.normalize else "group",
        use_vllm=cfg.use_vllm,
        vllm_mode=cfg.vllm_mode,
        vllm_server_base_url=cfg.vllm_server_base_url,
        bf16=use_bf16(cfg.bf16),
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        report_to="none",
        gradient_checkpointing=cfg.model.gradient_checkpointing,  # TRL turns it on by default
        shuffle_dataset=False,  # prompts are drawn live; a shuffle buffer would draw them far ahead
        remove_unused_columns=False,
    ), cfg.trl)
    return GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset,
                       processing_class=tokenizer, peft_config=peft_config(cfg.model), callbacks=list(callbacks))


def run_rl(cfg: RLConfig, progress: Callable[[str], None] | None = None, callbacks: list = ()) -> RLResult:
    """Stage 3: GRPO with the judge as reward; resumes from the newest checkpoint in output_dir."""
    cfg.check()
    require("transformers", "trl", "datasets")
    from ..judge.device import device_name, resolve_device

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = select_tasks(cfg.tasks)
    by_id = {t.id: t for t in tasks}
    judge_device = resolve_device(cfg.judge.device)
    shown_device = prompt_device(cfg.judge.device)
    pool = JudgePool(cfg.judge)
    recorder = StoreRecorder(cfg.db, "train-rl", to_dict(cfg), pool)
    exemplar_device = device_name(judge_device)
    writer = MetricsWriter(out, "rl")
    raw_means: list[float] = []
    outcomes: dict[str, int] = {}

    def on_stats(stats):
        raw_means.append(stats.raw_mean)
        for status, n in stats.counts.items():
            outcomes[status] = outcomes.get(status, 0) + n
        if progress:
            progress(f"reward call {len(raw_means)}: raw mean {stats.raw_mean:.3f}, {stats.counts}")

    reward = JudgeReward(by_id, recorder.judge, cfg.reward, parse_source, policy=f"rl:{Path(cfg.model.path).name}",
                         on_stats=on_stats)

    def rows():
        return contrastive_prompts(tasks, lambda t: recorder.history(t, device=exemplar_device), exemplars=cfg.exemplars,
                                   selection=cfg.exemplar_selection, tau=cfg.tau, device=shown_device, seed=cfg.seed,
                                   template=cfg.template)

    ckpt = latest_checkpoint(out) if cfg.resume else None
    final_dir = out / "final"
    if ckpt and checkpoint_step(ckpt) >= cfg.max_steps and (final_dir / "config.json").exists():
        # Finished already (transformers would run one more step when resuming at max_steps).
        log.info("RL run in %s already reached max_steps=%d", out, cfg.max_steps)
        writer.close()
        recorder.finish()
        return RLResult(str(out), str(final_dir), checkpoint_step(ckpt), ckpt)
    if ckpt:
        log.info("resuming RL from %s", ckpt)
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model)
    trainer = grpo_trainer(cfg, model, tokenizer, [reward], prompt_stream(rows, tokenizer),
                           [metrics_callback(writer), *callbacks])
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=ckpt)
    seconds = time.perf_counter() - start
    final = save_final(trainer, tokenizer, str(out / "final"))
    writer.write(trainer.state.global_step, {"train_seconds": seconds, "judge/evaluations_total": pool.counters.evaluations,
                                             "judge/evaluations_per_second": pool.counters.per_second})
    writer.close()
    recorder.finish()
    return RLResult(str(out), final, trainer.state.global_step, ckpt, seconds, pool.counters.evaluations,
                    pool.counters.seconds, raw_means, outcomes)
