"""Options of a search run (the optimize command, LLM-free or LLM), shared by CLI and library.

Each field carries its help (and, where the CLI spells it differently, its flag): `cudal1
optimize` builds its flags from these fields (`config_fields.add_flags`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config_fields import ConfigError, check_choices, section, setting
from .exemplars import METHODS


@dataclass
class LLMOptions:
    base_url: str | None = setting(None, "OpenAI-compatible server, e.g. http://localhost:8000/v1", flag="--llm-base-url", metavar="URL")
    model: str | None = setting(None, "Model name on the server, or hf:PATH for local transformers weights", flag="--llm-model", metavar="NAME")
    api_key_env: str = setting("CUDAL1_LLM_API_KEY", "Environment variable holding the API key (never logged or stored)")
    temperature: float = setting(0.8, "Sampling temperature")
    max_tokens: int = setting(4096, "Completion token limit per request")
    timeout_s: float = setting(300.0, "Per-request timeout")
    max_retries: int = setting(4, "Retries with exponential backoff per request")
    parallel: int = setting(4, "Concurrent requests")
    token_budget: int | None = setting(None, "Stop when prompt+completion tokens exceed this")


@dataclass
class SearchOptions:
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    size: str = setting("full", "full or smoke", choices=("full", "smoke"))
    budget: int = setting(16, "Most candidates to judge (LLM-free policy)")
    rounds: int = setting(3, "LLM rounds")
    samples: int = setting(4, "LLM samples per round")
    exemplars: int = setting(2, "Earlier implementations shown in a contrastive prompt (N)")
    exemplar_selection: str = setting("bucket", "How exemplars are drawn (docs/llm.md)", choices=METHODS)
    tau: float = setting(1.0, "Bucket-sampling temperature")
    wall_time_s: float | None = setting(None, "Stop after this many seconds (rules: checked before each batch and after each verdict; LLM: before each round)",
                                        flag="--wall-time", metavar="S")
    out_dir: str = setting("cudal1-out", "Where the best candidate and the report are written", flag="--out", metavar="DIR")
    db: str | None = setting(None, "SQLite store path (default $CUDAL1_DB or ./.cudal1/cudal1.db in the working directory)", metavar="PATH")
    allow_lower_precision: bool = setting(False, "Also try TF32/fp16/bf16 candidates (reported separately, never the main result)")
    seed_with_rules: bool = setting(True, "Seed the LLM exemplar pool with the LLM-free optimizer's candidates")
    llm: LLMOptions = section(LLMOptions, "The LLM policy's server and sampling (--policy llm)")

    def __post_init__(self):
        check_choices(self)
        if self.budget < 1:
            raise ConfigError("budget must be at least 1 (--budget)")
        if self.wall_time_s is not None and self.wall_time_s <= 0:
            raise ConfigError("wall_time_s must be positive (--wall-time)")
