"""Stage 2 (`cudal1 train self`): sample the current model, judge, keep the successes, fine-tune; repeat.

This is REINFORCE with a binary reward and no baseline, done as rejection-sampling SFT. Each
iteration writes ``iter-K/samples.jsonl`` (every sample with its verdict), ``iter-K/kept.jsonl``
and ``iter-K/train/`` (checkpoints, then ``final/``, the next iteration's model).
``state.json`` records finished phases, so a killed run resumes at the phase it was in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..store.records import Candidate
from ..tasks.contract import source_hash
from .checkpoint import append_jsonl, load_state, read_jsonl, save_state
from .common import (
    StoreRecorder,
    first_prompt,
    keeps,
    parse_source,
    prompt_device,
    select_tasks,
)
from .config import SelfTrainConfig, to_dict
from .judging import JudgePool
from .metrics import MetricsWriter

log = logging.getLogger(__name__)


@dataclass
class IterationResult:
    iteration: int
    samples: int = 0
    parsed: int = 0
    judged: int = 0
    kept: int = 0
    accepted: int = 0
    completion_tokens: int = 0
    sample_seconds: float = 0.0
    judge_seconds: float = 0.0
    train_seconds: float = 0.0
    model: str = ""
    first_loss: float | None = None
    last_loss: float | None = None


@dataclass
class SelfTrainResult:
    output_dir: str
    model: str  # the newest model
    iterations: list[IterationResult] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def _sample_and_judge(cfg: SelfTrainConfig, it: int, model_path: str, tasks, device: str, pool: JudgePool,
                      recorder: StoreRecorder, it_dir: Path) -> IterationResult:
    import torch

    from .generation import generate
    from .modeling import load_model, load_tokenizer

    res = IterationResult(iteration=it, model=model_path)
    tokenizer = load_tokenizer(cfg.model, model_path if model_path != cfg.model.path else None)
    model = load_model(cfg.model, model_path)
    if torch.cuda.is_available():
        model = model.to("cuda")
    prompts = [first_prompt(t, device, cfg.template) for t in tasks]
    t0 = time.perf_counter()
    samples = generate(model, tokenizer, [p.text for p in prompts], cfg.sampling, seed=cfg.train.seed + it)
    res.sample_seconds = time.perf_counter() - t0
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    res.samples = len(samples)
    res.completion_tokens = sum(s.completion_tokens for s in samples)
    sources = [parse_source(s.text) for s in samples]
    policy = f"self:{Path(model_path).name}"
    items = [(tasks[s.prompt_index], Candidate(tasks[s.prompt_index].id, src, policy=policy, strategy=f"self-train-{it}",
                                               prompt=prompts[s.prompt_index].text, response=s.text,
                                               template_version=prompts[s.prompt_index].template_version))
             for s, src in zip(samples, sources) if src]
    t0 = time.perf_counter()
    verdicts = iter(recorder.judge(items))
    res.judge_seconds = time.perf_counter() - t0
    res.parsed = res.judged = len(items)
    all_rows, kept_rows, kept_by_task = [], [], {}
    for s, src in zip(samples, sources):
        task, prompt = tasks[s.prompt_index], prompts[s.prompt_index]
        row = {"iteration": it, "task_id": task.id, "size": task.size, "prompt": prompt.text, "completion": s.text,
               "completion_tokens": s.completion_tokens, "finished": s.finished, "verdict": None, "speedup": None}
        if src:
            v = next(verdicts)
            row.update(verdict=v.verdict, speedup=v.speedup, correct=v.correct, source=src, source_hash=source_hash(src))
            res.accepted += v.accepted
            seen = kept_by_task.setdefault(task.id, set())
            if keeps(v, cfg.keep) and row["source_hash"] not in seen and len(seen) < cfg.keep_per_task:
                seen.add(row["source_hash"])
                kept_rows.append(row)
        all_rows.append(row)
    append_jsonl(it_dir / "samples.jsonl", all_rows)
    append_jsonl(it_dir / "kept.jsonl", kept_rows)
    res.kept = len(kept_rows)
    return res


def run_self_train(cfg: SelfTrainConfig, progress: Callable[[str], None] | None = None) -> SelfTrainResult:
    cfg.check()
    from .sft import fine_tune, load_records

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_file = out / "state.json"
    state = load_state(state_file, {"model": cfg.model.path, "done": 0, "iterations": {}})
    tasks = select_tasks(cfg.tasks)
    device = prompt_device(cfg.judge.device)
    pool = JudgePool(cfg.judge)
    recorder = StoreRecorder(cfg.db, "train-self", to_dict(cfg), pool)
    metrics = MetricsWriter(out, "self")
    extra = load_records(cfg.extra_data) if cfg.extra_data else []
    result = SelfTrainResult(str(out), state["model"])
    for key in sorted(state["iterations"], key=int):
        done = {k: v for k, v in state["iterations"][key].items() if k != "phase"}
        result.iterations.append(IterationResult(**done))

    for it in range(state["done"], cfg.iterations):
        it_dir = out / f"iter-{it}"
        info = state["iterations"].get(str(it))
        if info is None or info.get("phase") != "judged":
            for f in ("samples.jsonl", "kept.jsonl"):  # a half-written sampling phase is redone
                (it_dir / f).unlink(missing_ok=True)
            res = _sample_and_judge(cfg, it, state["model"], tasks, device, pool, recorder, it_dir)
            state["iterations"][str(it)] = {**asdict(res), "phase": "judged"}
            save_state(state_file, state)
            metrics.write(it, {k: v for k, v in asdict(res).items() if isinstance(v, (int, float))}, prefix="sample/")
            if progress:
                progress(f"iteration {it}: {res.kept} kept of {res.samples} samples ({res.judged} judged)")
        res_json = dict(state["iterations"][str(it)])
        res_json.pop("phase", None)
        res = IterationResult(**res_json)
        records = []
        for k in range(0 if cfg.cumulative else it, it + 1):
            records += read_jsonl(out / f"iter-{k}" / "kept.jsonl")
        records += extra
        if records:
            sft = fine_tune(cfg.model, records, str(it_dir / "train"), cfg.train, resume=True, stage="self",
                            metrics_extra={"iteration": it}, model_path=state["model"])
            res.train_seconds, res.first_loss, res.last_loss = sft.train_seconds, sft.first_loss, sft.last_loss
            res.model = sft.final_dir
            state["model"] = sft.final_dir
        else:
            log.warning("iteration %d kept no samples; the model is unchanged", it)
        state["iterations"][str(it)] = {**asdict(res), "phase": "trained"}
        state["done"] = it + 1
        save_state(state_file, state)
        result.iterations = [r for r in result.iterations if r.iteration != it] + [res]
        result.model = state["model"]
        if progress:
            progress(f"iteration {it}: model {state['model']}")
    recorder.finish()
    metrics.close()
    return result
