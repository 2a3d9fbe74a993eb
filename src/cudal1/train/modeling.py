"""Loading the policy model and tokenizer; prompts as the model sees them; TRL argument plumbing.

transformers, peft and trl are imported inside the functions (the ``train`` extra), so the core
package imports without them.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from .config import ModelConfig

log = logging.getLogger(__name__)
INSTALL_HINT = "pip install 'cudal1[train]'"


class TrainUnavailable(RuntimeError):
    """A training dependency is missing or unusable here; the message says what to install."""


def require(*modules: str) -> None:
    import importlib

    missing = []
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError:
            missing.append(m)
    if missing:
        raise TrainUnavailable(f"training needs {', '.join(missing)}: {INSTALL_HINT}")


def torch_dtype(name: str):
    import torch

    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def use_bf16(flag: bool | None) -> bool:
    import torch

    if flag is not None:
        return flag
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def load_tokenizer(cfg: ModelConfig, path: str | None = None):
    """The tokenizer at ``path`` (a saved model folder), else ``cfg.tokenizer`` or ``cfg.path``."""
    require("transformers")
    from transformers import AutoTokenizer

    if path == cfg.path:
        path = None
    tok = AutoTokenizer.from_pretrained(path or cfg.tokenizer or cfg.path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(cfg: ModelConfig, path: str | None = None):
    """The causal LM at ``path`` (default ``cfg.path``); dtype and attention kernel from ``cfg``."""
    require("transformers")
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch_dtype(cfg.dtype)}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(path or cfg.path, **kwargs)
    return model


def peft_config(cfg: ModelConfig):
    if not cfg.lora:
        return None
    require("peft")
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_target_modules, task_type="CAUSAL_LM")


def is_chat(tokenizer) -> bool:
    """Chat models get their prompts as messages (the tokenizer's chat template); base models as text."""
    return bool(getattr(tokenizer, "chat_template", None))


def model_prompt(tokenizer, text: str):
    """A prompt as TRL's datasets hold it: a message list for chat models, plain text otherwise."""
    return [{"role": "user", "content": text}] if is_chat(tokenizer) else text


def model_completion(tokenizer, text: str):
    return [{"role": "assistant", "content": text}] if is_chat(tokenizer) else text


def prompt_for_generation(tokenizer, text: str) -> str:
    if is_chat(tokenizer):
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    return text


def trl_args(cls, values: dict, extra: dict | None = None):
    """Build a TRL/transformers config, mapping names that moved between releases.

    ``warmup_ratio`` became a fractional ``warmup_steps`` in transformers 5; ``extra`` passes
    other fields through unchanged (unknown ones are an error naming the class).
    """
    names = {f.name for f in dataclasses.fields(cls)}
    values = dict(values)
    if "warmup_ratio" in values and "warmup_ratio" not in names:
        ratio = values.pop("warmup_ratio")
        values.setdefault("warmup_steps", ratio)
    values = {k: v for k, v in values.items() if k in names}
    for k, v in (extra or {}).items():
        if k not in names:
            raise ValueError(f"{cls.__name__} has no field {k!r} (check the trl/extra section of the config)")
        values[k] = v
    return cls(**values)


def save_final(trainer, tokenizer, out_dir: str, merge_lora: bool = True) -> str:
    """Write the trained model (LoRA merged into the weights) and tokenizer to ``out_dir``."""
    model = trainer.model
    if hasattr(model, "merge_and_unload") and merge_lora:
        model = model.merge_and_unload()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
