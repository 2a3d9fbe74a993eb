"""Training configs: YAML loading, overrides, validation messages, the shipped examples, the CLI."""

from pathlib import Path

import pytest

from cudal1.train.config import (
    STAGE_CONFIGS,
    ConfigError,
    RLConfig,
    SFTConfig,
    SFTDataConfig,
    config_table,
    load_config,
)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "src" / "cudal1" / "train" / "configs"


@pytest.mark.parametrize("stage", list(STAGE_CONFIGS))
def test_shipped_examples_load_and_validate(stage):
    path = CONFIG_DIR / f"{stage.replace('-', '_')}.yaml"
    cfg = load_config(STAGE_CONFIGS[stage], path)
    assert isinstance(cfg, STAGE_CONFIGS[stage])


def test_rl_example_carries_the_cuda_l1_defaults():
    cfg = load_config(RLConfig, CONFIG_DIR / "rl.yaml")
    assert (cfg.reward.buckets, cfg.reward.variance_cut, cfg.reward.clip, cfg.exemplars) == (7, 0.005, 1.5, 2)


def test_overrides_nested_and_typed(tmp_path):
    f = tmp_path / "rl.yaml"
    f.write_text("model: {path: m}\nreward: {clip: 1.5}\n")
    cfg = load_config(RLConfig, f, ["reward.clip=2", "num_generations=4", "tasks.ids=[level1/1_Square_Matmul]",
                                    "learning_rate=1e-5", "judge.settings={timed_calls: 50}"])
    assert cfg.reward.clip == 2.0 and isinstance(cfg.reward.clip, float)
    assert cfg.num_generations == 4
    assert cfg.tasks.ids == ["level1/1_Square_Matmul"]
    assert cfg.learning_rate == 1e-5  # YAML reads 1e-5 as a string; converted
    assert cfg.judge.judge_config().timed_calls == 50


def test_teachers_become_llm_options():
    cfg = load_config(SFTDataConfig, None, ["teachers=[{base_url: http://h/v1, model: m, temperature: 0.2}]"])
    assert cfg.teachers[0].model == "m" and cfg.teachers[0].temperature == 0.2


@pytest.mark.parametrize("overrides,message", [
    (["model.path=m", "reward.clipx=1"], "unknown key(s) 'clipx'"),
    (["model.path=m", "num_generations=1"], "num_generations must be at least 2"),
    ([], "model.path is required"),
    (["model.path=m", "reward.transform=cube"], "speedup or log"),
    (["model.path=m", "judge.settings={trialz: 3}"], "unknown JudgeConfig fields"),
    (["model.path=m", "beta=high"], "beta must be a number"),
])
def test_errors_say_what_to_change(overrides, message):
    with pytest.raises(ConfigError, match=None) as e:
        load_config(RLConfig, None, overrides)
    assert message in str(e.value)


def test_sft_needs_data():
    with pytest.raises(ConfigError, match="data is empty"):
        load_config(SFTConfig, None, ["model.path=m"])


def test_every_field_documented():
    for cls in STAGE_CONFIGS.values():
        rows = config_table(cls)
        assert rows and all(help for _, _, help in rows), cls.__name__


def test_cli_print_config_and_usage_errors(capsys):
    from cudal1.cli.main import main

    assert main(["train", "rl", "--config", str(CONFIG_DIR / "rl.yaml"), "--print-config", "beta=0.1"]) == 0
    assert "beta: 0.1" in capsys.readouterr().out
    assert main(["train", "rl", "--config", str(CONFIG_DIR / "rl.yaml"), "reward.clipx=3"]) == 2
    assert main(["train", "sft", "--config", "/nonexistent.yaml"]) == 2


def test_docs_reference_matches_the_code():
    from cudal1.train.config import config_markdown

    doc = (Path(__file__).resolve().parent.parent / "docs" / "training.md").read_text()
    assert config_markdown().rstrip() in doc, "regenerate: python -m cudal1.cli.config_docs"
