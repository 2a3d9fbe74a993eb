"""The three training stages end to end on CPU: a tiny model built here, two smoke tasks, the real judge.

The tiny model cannot write code by itself, so stage 2 and 3 start from a model that stage 1
over-fitted on one answer per task (a correct one for Square_Matmul, a wrong one for Swish):
its samples are real generations, and the judge decides which are kept and what they earn.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl", reason="training tests need the train extra: pip install 'cudal1[train]'")
pytest.importorskip("datasets", reason="training tests need the train extra: pip install 'cudal1[train]'")

import train_helpers as h

from cudal1.train.checkpoint import read_jsonl
from cudal1.train.config import (
    JudgeOptions,
    ModelConfig,
    RLConfig,
    SamplingArgs,
    SelfTrainConfig,
    SFTConfig,
    SFTDataConfig,
    TaskSelection,
    TrainArgs,
)

SMOKE = TaskSelection(ids=list(h.TASK_IDS), size="smoke")
JUDGE = JudgeOptions(device="cpu", quick=True, build_workers=2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import transformers

    transformers.logging.set_verbosity_error()
    return h.build_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def sft_cfg(tiny, tmp_path_factory):
    d = tmp_path_factory.mktemp("sft")
    prompts = h.first_prompts()
    records = [{"task_id": "level1/1_Square_Matmul", "prompt": prompts["level1/1_Square_Matmul"],
                "completion": h.ANSWERS["level1/1_Square_Matmul"]},
               {"task_id": "level1/19_Swish", "prompt": prompts["level1/19_Swish"], "completion": h.WRONG_ANSWER}]
    data = d / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    return SFTConfig(model=ModelConfig(path=tiny), data=[str(data)], output_dir=str(d / "run"),
                     train=TrainArgs(learning_rate=4e-3, max_steps=80, batch_size=2, logging_steps=10, save_steps=40,
                                     warmup_ratio=0.0, lr_scheduler="constant", max_length=2048, seed=0))


@pytest.fixture(scope="module")
def sft_result(sft_cfg):
    from cudal1.train.sft import run_sft

    return run_sft(sft_cfg)


@pytest.mark.slow
def test_sft_loss_falls_and_checkpoints(sft_cfg, sft_result):
    from pathlib import Path

    from cudal1.train.metrics import read_metrics
    from cudal1.train.sft import run_sft

    assert sft_result.global_step == 80
    assert sft_result.last_loss < sft_result.first_loss / 5, sft_result.losses
    assert (Path(sft_result.final_dir) / "config.json").exists()
    logged = [m for m in read_metrics(sft_cfg.output_dir) if "loss" in m]
    assert logged and logged[0]["loss"] > logged[-1]["loss"]
    assert (Path(sft_cfg.output_dir) / "tensorboard").is_dir()
    # Rerunning resumes from the last checkpoint instead of training again.
    again = run_sft(sft_cfg)
    assert again.resumed_from and again.resumed_from.endswith("checkpoint-80")
    assert again.global_step == 80 and again.losses == [l for l in again.losses if l[0] <= 80]


@pytest.mark.slow
def test_sft_data_keeps_only_judged_correct_answers(tmp_path, monkeypatch):
    from cudal1.search.options import LLMOptions
    from cudal1.store import Store
    from cudal1.train.sft_data import run_sft_data, state_path

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    teacher = h.ScriptedTeacher({
        "level1/1_Square_Matmul": ["I would rather not write code today.", h.ANSWERS["level1/1_Square_Matmul"]],
        "level1/19_Swish": [h.HACK_ANSWER, h.ANSWERS["level1/19_Swish"]],
    })
    try:
        cfg = SFTDataConfig(output=str(tmp_path / "data" / "sft.jsonl"), db=str(tmp_path / "s.db"), tasks=SMOKE, judge=JUDGE,
                            teachers=[LLMOptions(base_url=teacher.base_url, model="teacher", max_retries=0, parallel=2)],
                            keep_per_task=1, max_attempts_per_teacher=4, attempts_per_round=2)
        result = run_sft_data(cfg)
        records = read_jsonl(cfg.output)
        assert result.per_task == {"level1/1_Square_Matmul": 1, "level1/19_Swish": 1}
        assert result.attempts == 4 and result.judged == 3  # the answer without code is never judged
        assert {r["task_id"]: r["completion"] for r in records} == {t: h.ANSWERS[t] for t in h.TASK_IDS}
        assert all(r["verdict"] == "accepted" for r in records)
        store = Store(cfg.db)
        hacks = store.hacks()
        assert len(hacks) == 1 and hacks[0].task_id == "level1/19_Swish"
        assert len(store.history("level1/19_Swish")) == 2
        # A rerun resumes: every task already has its records, so no teacher request goes out.
        sent = len(teacher.requests)
        again = run_sft_data(cfg)
        assert len(teacher.requests) == sent and again.new_records == 0 and again.records == 2
        assert json.loads(state_path(cfg.output).read_text())["attempts"]
    finally:
        teacher.close()


@pytest.mark.slow
def test_self_training_keeps_only_judged_correct_samples(sft_result, tmp_path):
    from cudal1.store import Store
    from cudal1.train.self_train import run_self_train

    cfg = SelfTrainConfig(model=ModelConfig(path=sft_result.final_dir), tasks=SMOKE, judge=JUDGE, db=str(tmp_path / "s.db"),
                          output_dir=str(tmp_path / "self"), iterations=1,
                          sampling=SamplingArgs(temperature=0.0, max_new_tokens=160, batch_size=2),
                          train=TrainArgs(learning_rate=1e-3, max_steps=3, batch_size=1, logging_steps=1, save_steps=3,
                                          warmup_ratio=0.0, max_length=2048))
    result = run_self_train(cfg)
    it = result.iterations[0]
    samples = read_jsonl(tmp_path / "self" / "iter-0" / "samples.jsonl")
    kept = read_jsonl(tmp_path / "self" / "iter-0" / "kept.jsonl")
    verdicts = {s["task_id"]: s["verdict"] for s in samples}
    assert verdicts == {"level1/1_Square_Matmul": "accepted", "level1/19_Swish": "incorrect"}  # judged, not assumed
    assert [k["task_id"] for k in kept] == ["level1/1_Square_Matmul"] and it.kept == 1 and it.judged == 2
    assert result.model.endswith("iter-0/train/final") and it.last_loss is not None
    assert len(Store(cfg.db).history("level1/19_Swish")) == 1
    # Resume: the finished iteration is not sampled or trained again.
    again = run_self_train(cfg)
    assert len(read_jsonl(tmp_path / "self" / "iter-0" / "samples.jsonl")) == len(samples)
    assert again.model == result.model


@pytest.mark.slow
def test_grpo_step_on_real_judge_rewards(sft_result, tmp_path):
    from cudal1.store import Store
    from cudal1.train.metrics import read_metrics
    from cudal1.train.rl import run_rl

    cfg = RLConfig(model=ModelConfig(path=sft_result.final_dir), tasks=SMOKE, judge=JUDGE, db=str(tmp_path / "rl.db"),
                   output_dir=str(tmp_path / "rl"), num_generations=2, prompts_per_step=1, max_steps=1,
                   max_completion_length=160, temperature=0.2, learning_rate=1e-4, beta=0.04, save_steps=1, logging_steps=1, seed=0)
    result = run_rl(cfg)
    assert result.global_step == 1
    assert result.judge_evaluations >= 1 and len(result.rewards) == 1
    assert sum(result.outcomes.values()) == cfg.num_generations  # every completion has an outcome
    store = Store(cfg.db)
    judged = store.history("level1/1_Square_Matmul") + store.history("level1/19_Swish")
    assert judged and {a.strategy for a in judged} == {"rl"}
    assert {a.verdict.verdict for a in judged} <= {"accepted", "incorrect"}
    logged = read_metrics(cfg.output_dir)
    assert any("judge/accepted_rate" in m or "judge/incorrect_rate" in m for m in logged)
    # Resume from checkpoint-1: nothing left to do, no new judge calls.
    again = run_rl(cfg)
    assert again.resumed_from.endswith("checkpoint-1") and again.judge_evaluations == 0


def test_contrastive_prompts_show_stored_exemplars():
    from test_train_reward import verdict

    from cudal1.policies.base import Attempt
    from cudal1.train.rl import contrastive_prompts

    tasks = h.smoke_tasks()
    history = {t.id: [Attempt(source=f"class ModelNew: pass  # {i}", verdict=verdict("accepted", s))
                      for i, s in enumerate([0.8, 1.3, 2.5])] for t in tasks}
    rows = contrastive_prompts(tasks, lambda t: history[t.id], exemplars=2, selection="bucket", tau=1.0,
                               device="cuda", seed=0)
    first = [next(rows) for _ in range(4)]
    assert {r["task_id"] for r in first} == set(h.TASK_IDS)
    assert all(r["exemplars"] == 2 and r["template_version"].startswith("contrastive") for r in first)
    assert "Implementation 2: speedup" in first[0]["prompt_text"]
    empty = next(contrastive_prompts(tasks, lambda t: [], exemplars=2, selection="bucket", tau=1.0, device="cuda", seed=0))
    assert empty["exemplars"] == 0 and empty["template_version"].startswith("first_round")


def test_grpo_raises_a_synthetic_reward(tiny, tmp_path):
    """GRPO itself learns: reward = share of completion tokens from the lower half of the vocabulary."""
    from datasets import Dataset

    from cudal1.train.modeling import load_model, load_tokenizer
    from cudal1.train.rl import grpo_trainer

    cfg = RLConfig(model=ModelConfig(path=tiny), output_dir=str(tmp_path / "grpo"), num_generations=8, prompts_per_step=2,
                   max_steps=12, learning_rate=3e-2, beta=0.0, max_completion_length=16, save_steps=1000, seed=0,
                   trl={"lr_scheduler_type": "constant"})
    tokenizer, model = load_tokenizer(cfg.model), load_model(cfg.model)
    half = len(tokenizer) // 2
    means = []

    def low_half(prompts, completions, completion_ids, **kwargs):
        r = [sum(i < half for i in ids) / max(1, len(ids)) for ids in completion_ids]
        means.append(sum(r) / len(r))
        return r

    data = Dataset.from_dict({"prompt": ["def forward(self, x):", "import torch"] * 8})
    grpo_trainer(cfg, model, tokenizer, [low_half], data).train()
    assert len(means) == 12
    assert sum(means[-3:]) / 3 > sum(means[:3]) / 3 + 0.15, means


def test_lora_fine_tune_learns_and_merges(tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    from cudal1.train.sft import fine_tune

    r = fine_tune(ModelConfig(path=tiny, lora=True, lora_r=4, lora_alpha=8), h.sft_records(), str(tmp_path / "lora"),
                  TrainArgs(learning_rate=1e-2, max_steps=8, batch_size=2, logging_steps=1, save_steps=100,
                            warmup_ratio=0.0, max_length=2048))
    assert r.last_loss < r.first_loss
    merged = AutoModelForCausalLM.from_pretrained(r.final_dir)  # a plain model: adapters merged into the weights
    assert not any("lora" in n for n, _ in merged.named_parameters())
