"""config_fields: one definition per setting drives the flags of eval/optimize/bench, YAML loading and the docs."""

import argparse
from dataclasses import dataclass, fields, replace
from pathlib import Path

import pytest

from cudal1.bench.runner import BenchOptions
from cudal1.cli import cmd_bench, cmd_eval, cmd_optimize
from cudal1.cli.main import build_parser
from cudal1.config_fields import (
    ConfigError,
    add_flags,
    check_choices,
    flag_help,
    flag_of,
    flag_values,
    from_dict,
    section,
    setting,
)
from cudal1.judge.config import JudgeConfig
from cudal1.search.exemplars import METHODS
from cudal1.search.options import LLMOptions, SearchOptions
from cudal1.train.config import RLConfig

ROOT = Path(__file__).resolve().parent.parent

# (sub-command, config class, the fields it exposes as flags)
EXPOSED = [
    ("eval", JudgeConfig, cmd_eval.JUDGE_FLAGS),
    ("optimize", SearchOptions, cmd_optimize.SEARCH_FLAGS + cmd_optimize.LLM_SEARCH_FLAGS),
    ("optimize", LLMOptions, cmd_optimize.LLM_FLAGS),
    ("bench", BenchOptions, cmd_bench.BENCH_FLAGS),
]


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("command,cls,names", EXPOSED, ids=lambda x: getattr(x, "__name__", None) or str(x)[:20])
def test_every_flag_takes_its_help_choices_and_default_from_the_field(command, cls, names):
    actions = {opt: a for a in _subparser(command)._actions for opt in a.option_strings}
    for name in names:
        flag = flag_of(cls, name)
        action = actions[flag]
        group = [n for n in names if flag_of(cls, n) == flag]
        assert action.help == flag_help(cls, group)
        field = next(f for f in fields(cls) if f.name == name)
        assert field.metadata["help"].rstrip(".") in action.help
        assert action.default is None  # left out: the config's own default (or a preset's) applies
        if field.metadata.get("choices"):
            assert list(action.choices) == list(field.metadata["choices"])


def _argv(cls, names, cfg) -> list[str]:
    """The flags that set ``cfg``'s values of ``names`` (the inverse of flag_values)."""
    argv, seen = [], set()
    for name in names:
        flag = flag_of(cls, name)
        if flag in seen:
            continue
        seen.add(flag)
        value = getattr(cfg, name)
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def test_eval_flags_round_trip_through_argparse():
    parser = _subparser("eval")
    assert JudgeConfig(**flag_values(parser.parse_args(["REF", "C.py"]), JudgeConfig, cmd_eval.JUDGE_FLAGS)) == JudgeConfig()
    helps = {a.option_strings[0]: a.help for a in parser._actions if a.option_strings}
    assert helps["--trials"].endswith("(default: 5)") and helps["--probe"].endswith("(default: on)")
    wanted = replace(JudgeConfig(), trials=7, atol=1e-3, rtol=1e-3, timed_calls=40, rounds=4, sandbox="off",
                     robustness_probe=False, build_timeout_s=5.0, run_timeout_s=9.5, allow_lower_precision=True)
    args = parser.parse_args(["REF", "C.py", *_argv(JudgeConfig, cmd_eval.JUDGE_FLAGS, wanted)])
    assert JudgeConfig(**flag_values(args, JudgeConfig, cmd_eval.JUDGE_FLAGS)) == wanted


def test_eval_keeps_its_flag_names_and_their_meaning():
    args = _subparser("eval").parse_args(["REF", "C.py", "--tolerance", "0.5", "--no-probe", "--build-timeout", "3",
                                          "--run-timeout", "4", "--allow-lower-precision", "--timed-calls", "31"])
    cfg = JudgeConfig(**flag_values(args, JudgeConfig, cmd_eval.JUDGE_FLAGS))
    assert (cfg.atol, cfg.rtol, cfg.robustness_probe, cfg.build_timeout_s, cfg.run_timeout_s) == (0.5, 0.5, False, 3.0, 4.0)
    assert cfg.allow_lower_precision and cfg.timed_calls == 31 and cfg.trials == JudgeConfig().trials


def test_optimize_flags_round_trip_and_defaults(monkeypatch):
    parser = _subparser("optimize")
    args = parser.parse_args(["level1/1", "--size", "smoke"])
    options = cmd_optimize.options_from_args(args)
    assert replace(options, llm=LLMOptions()) == SearchOptions(size="smoke") and options.llm == LLMOptions()
    argv = ["level1/1", "--size", "smoke", "--budget", "3", "--out", "o", "--db", "x.db", "--allow-lower-precision",
            "--wall-time", "2.5", "--rounds", "5", "--samples", "6", "--exemplars", "1", "--exemplar-selection", "topk",
            "--llm-base-url", "http://h/v1", "--llm-model", "m", "--token-budget", "100"]
    o = cmd_optimize.options_from_args(parser.parse_args(argv))
    assert (o.budget, o.out_dir, o.db, o.allow_lower_precision, o.wall_time_s) == (3, "o", "x.db", True, 2.5)
    assert (o.rounds, o.samples, o.exemplars, o.exemplar_selection) == (5, 6, 1, "topk")
    assert (o.llm.base_url, o.llm.model, o.llm.token_budget) == ("http://h/v1", "m", 100)


def test_bench_flags_build_bench_options():
    args = _subparser("bench").parse_args(["--size", "smoke", "--gpus", "2", "--fresh", "--build-workers", "3", "--tasks", "level1/*"])
    values = flag_values(args, BenchOptions, cmd_bench.BENCH_FLAGS)
    assert values == {"gpus": 2, "fresh": True, "build_workers": 3, "tasks": "level1/*"}
    assert BenchOptions(**values).gpus == 2


def test_exemplar_methods_are_named_once():
    assert SearchOptions.__dataclass_fields__["exemplar_selection"].metadata["choices"] == METHODS
    assert RLConfig.__dataclass_fields__["exemplar_selection"].metadata["choices"] == METHODS
    action = next(a for a in _subparser("optimize")._actions if "--exemplar-selection" in a.option_strings)
    assert tuple(action.choices) == METHODS


@dataclass
class _Inner:
    k: int = setting(1, "An integer.")


@dataclass
class _Outer:
    name: str = setting("a", "A name.", choices=("a", "b"))
    ratio: float = setting(0.5, "A ratio.")
    flag: bool = setting(False, "A switch.")
    items: list[str] = setting([], "Some names.")
    inner: _Inner = section(_Inner, "Nested.")

    def __post_init__(self):
        check_choices(self)


def test_from_dict_converts_and_nests():
    cfg = from_dict(_Outer, {"name": "b", "ratio": "1e-3", "items": "x", "inner": {"k": 2.0}})
    assert cfg == _Outer(name="b", ratio=1e-3, items=["x"], inner=_Inner(k=2))


@pytest.mark.parametrize("data,message", [
    ({"nmae": "a"}, "unknown key(s) 'nmae'; known: name, ratio, flag, items, inner"),
    ({"inner": {"j": 1}}, "inner: unknown key(s) 'j'; known: k"),
    ({"ratio": "half"}, "ratio must be a number, not 'half'"),
    ({"flag": "yes"}, "flag must be true or false, not 'yes'"),
    ({"inner": {"k": 1.5}}, "inner.k must be an integer, not 1.5"),
    ({"inner": 3}, "inner must be a mapping of _Inner fields, not 3"),
    ({"items": 3}, "items must be a list, not 3"),
    ({"name": "c"}, "name must be a or b, not 'c'"),
])
def test_from_dict_errors_name_the_fix(data, message):
    with pytest.raises(ConfigError) as e:
        from_dict(_Outer, data)
    assert message in str(e.value)


def test_judge_config_from_dict_is_strict_from_json_is_lenient():
    with pytest.raises(ConfigError, match="unknown key.*'trialz'.*known: trials"):
        JudgeConfig.from_dict({"trialz": 3})
    with pytest.raises(ConfigError, match="sandbox must be auto, strict, basic or off, not 'none'"):
        JudgeConfig.from_dict({"sandbox": "none"})
    assert JudgeConfig.from_dict({"atol": "1e-3"}).atol == 1e-3
    assert JudgeConfig.from_json({"trials": 3, "retired_setting": 1}).trials == 3  # old stored rows still load


def test_fields_sharing_a_flag_must_share_a_default():
    @dataclass
    class Bad:
        a: int = setting(1, "A.", flag="--x")
        b: int = setting(2, "B.", flag="--x")

    with pytest.raises(ValueError, match="share --x"):
        add_flags(argparse.ArgumentParser(), Bad, ["a", "b"])


def test_docs_tables_are_generated_from_the_fields():
    from cudal1.cli.config_docs import stale_sections

    assert stale_sections(ROOT) == [], "regenerate: python -m cudal1.cli.config_docs"
