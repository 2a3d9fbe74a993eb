"""Config fields that carry their help, and what is built from them: loading a mapping
(`from_dict`), command-line flags (`add_flags` / `flag_values`) and docs tables (`config_table`,
`markdown_table`). A setting, its default, its help and its flag are written once, in the
dataclass; the CLI, the YAML loader and the docs read them from there.

The lowest layer of the package: it imports nothing of cudal1, so the configs of the judge
(`JudgeConfig`), the search (`SearchOptions`, `LLMOptions`), the bench (`BenchOptions`) and the
training stages all use it.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import field, fields
from typing import Any


class ConfigError(ValueError):
    """A config that cannot be used; the message says which key and what to change."""


def setting(default, help: str, *, flag: str | None = None, choices: typing.Iterable[str] | None = None,
            metavar: str | None = None):
    """A dataclass field with its help text. ``flag``: the command-line flag when it is not
    ``--field-name`` (fields sharing one flag are set together; a bool that defaults to true gets
    ``--flag/--no-flag``); ``choices``: the only values allowed (checked by `check_choices`,
    offered by the flag, listed in the help)."""
    metadata: dict[str, Any] = {"help": help}
    if flag is not None:
        metadata["flag"] = flag
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if metavar is not None:
        metadata["metavar"] = metavar
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls, help: str):
    """A nested config (a dataclass) with its help text."""
    return field(default_factory=cls, metadata={"help": help})


def default_of(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _field(cls, name: str) -> dataclasses.Field:
    for f in fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def choices_of(cls, name: str) -> tuple[str, ...]:
    return _field(cls, name).metadata.get("choices", ())


def _or_list(values) -> str:
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def check_choices(cfg, where: str = "") -> None:
    """Every field of ``cfg`` with ``choices`` holds one of them, else a ConfigError naming them."""
    for f in fields(cfg):
        allowed = f.metadata.get("choices")
        value = getattr(cfg, f.name)
        if allowed and value not in allowed:
            raise ConfigError(f"{where}{f.name} must be {_or_list(allowed)}, not {value!r}")


# --- loading a mapping ---------------------------------------------------------------------------


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(value: Any, tp, key: str):
    """Check and convert a YAML value to the annotated type (dataclasses, lists of dataclasses, scalars)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of {tp.__name__} fields, not {value!r}")
        return from_dict(tp, value, prefix=key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            if args and args[0] is str and isinstance(value, str):
                return origin([value])
            raise ConfigError(f"{key} must be a list, not {value!r}")
        return origin(_convert(v, args[0] if args else Any, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, not {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, not {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key} must be an integer, not {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads 1e-5 (no dot) as a string
            except ValueError:
                pass
        raise ConfigError(f"{key} must be a number, not {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key} must be a string, not {value!r}")
    return value


def from_dict(cls, data: dict, prefix: str = ""):
    """Build config ``cls`` from a mapping: unknown keys are errors that list the known ones, a
    value of the wrong type an error naming the type expected; nested configs are mappings."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or cls.__name__} must be a mapping of {cls.__name__} fields, not {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    unknown = [k for k in data if k not in known]
    if unknown:
        where = f"{prefix}: " if prefix else ""
        raise ConfigError(f"{where}unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    kwargs = {name: _convert(value, hints[name], f"{prefix}.{name}" if prefix else name) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as e:  # a config's own check (__post_init__)
        raise ConfigError(f"{prefix}: {e}" if prefix else str(e)) from None


# --- command-line flags --------------------------------------------------------------------------


def flag_of(cls, name: str) -> str:
    """The command-line flag of field ``name``: its ``flag`` metadata, else ``--name-with-dashes``."""
    return _field(cls, name).metadata.get("flag") or "--" + name.replace("_", "-")


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _scalar(tp):
    """The flag's value type: int, float, str or bool (``X | None`` is X)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1 else tp


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if value == "":
        return "''"
    return str(value)


def flag_help(cls, names: typing.Sequence[str]) -> str:
    """The help of one flag that sets ``names`` (the fields' help, their choices and default)."""
    def sentence(name: str) -> str:
        text = _field(cls, name).metadata.get("help", "").rstrip()
        return text if not text or text.endswith(".") else text + "."

    first = _field(cls, names[0])
    text = " ".join(sentence(n) for n in names)
    if len(names) > 1:
        text = f"Sets {' and '.join(names)} alike. {text}"
    choices = first.metadata.get("choices")
    if choices and not all(c in text for c in choices):
        text += f" One of {_or_list(choices)}."
    if "default" not in text:
        text += f" (default: {_shown(default_of(first))})"
    return text.replace("%", "%%")


def _groups(cls, names: typing.Iterable[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(flag_of(cls, name), []).append(name)
    for flag, group in groups.items():
        defaults = {repr(default_of(_field(cls, n))) for n in group}
        if len(defaults) > 1:
            raise ValueError(f"{cls.__name__}: {group} share {flag} but their defaults differ")
    return groups


def add_flags(parser, cls, names: typing.Iterable[str]) -> None:
    """One flag per field of ``cls`` in ``names`` (fields sharing a ``flag`` get one flag), its type,
    choices, help and shown default from the field. A flag left out is ``None`` in the parsed
    arguments, so the config's own default (or a preset's, like ``JudgeConfig.quick``) applies."""
    hints = typing.get_type_hints(cls)
    for flag, group in _groups(cls, names).items():
        f = _field(cls, group[0])
        tp = _scalar(hints[f.name])
        kw: dict[str, Any] = {"dest": _dest(flag), "default": None, "help": flag_help(cls, group)}
        if tp is bool:
            if default_of(f):
                kw["action"] = argparse.BooleanOptionalAction
            else:
                kw["action"] = "store_const"
                kw["const"] = True
        else:
            kw["type"] = tp
            if f.metadata.get("choices"):
                kw["choices"] = list(f.metadata["choices"])
            if not f.metadata.get("choices"):
                kw["metavar"] = f.metadata.get("metavar") or {int: "N", float: "X"}.get(tp, "TEXT")
        parser.add_argument(flag, **kw)


def flag_values(args: argparse.Namespace, cls, names: typing.Iterable[str]) -> dict:
    """``{field: value}`` for the flags of ``names`` given on the command line (as `add_flags` made them)."""
    out = {}
    for flag, group in _groups(cls, names).items():
        value = getattr(args, _dest(flag), None)
        if value is not None:
            out.update({n: value for n in group})
    return out


# --- docs ------------------------------------------------------------------------------------------


def config_table(cls, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, help) rows for docs and ``--help``; nested configs are flattened with dots."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        if _is_dataclass_type(hints[f.name]):
            rows.extend(config_table(hints[f.name], prefix=key + "."))
            continue
        rows.append((key, repr(default_of(f)), f.metadata.get("help", "")))
    return rows


def _field_at(cls, key: str) -> tuple[type, dataclasses.Field]:
    """(the config class that holds it, the field) for a dotted key (``llm.model``)."""
    *path, name = key.split(".")
    for part in path:
        cls = typing.get_type_hints(cls)[part]
    return cls, _field(cls, name)


def markdown_table(cls, flags: typing.Iterable[str] = ()) -> str:
    """A markdown table of ``cls``'s settings (key, default, meaning; nested configs flattened with
    dots); with ``flags`` (dotted keys), a column with the command-line flag of each of those."""
    flags = set(flags)
    if flags:
        out = ["| key | flag | default | meaning |", "| --- | --- | --- | --- |"]
    else:
        out = ["| key | default | meaning |", "| --- | --- | --- |"]
    for key, default, help in config_table(cls):
        cells = [f"`{key}`"]
        if flags:
            holder, f = _field_at(cls, key)
            flag = flag_of(holder, f.name)
            if default_of(f) is True:
                flag += f"` / `--no-{flag[2:]}"
            cells.append(f"`{flag}`" if key in flags else "")
        choices = _field_at(cls, key)[1].metadata.get("choices")
        if choices and not all(c in help for c in choices):
            help = f"{help.rstrip('.')}: {_or_list(choices)}."
        cells += [f"`{default}`", help.replace("|", "/")]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


__all__ = [
    "ConfigError", "setting", "section", "default_of", "choices_of", "check_choices", "from_dict",
    "flag_of", "flag_help", "add_flags", "flag_values", "config_table", "markdown_table",
]
