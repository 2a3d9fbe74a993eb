"""Options of a search run (the optimize command, LLM-free or LLM), shared by CLI and library."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LLMOptions:
    base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible server, e.g. http://localhost:8000/v1"})
    model: str | None = field(default=None, metadata={"help": "Model name on the server, or hf:PATH for local transformers weights"})
    api_key_env: str = field(default="CUDAL1_LLM_API_KEY", metadata={"help": "Environment variable holding the API key (never logged or stored)"})
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature"})
    max_tokens: int = field(default=4096, metadata={"help": "Completion token limit per request"})
    timeout_s: float = field(default=300.0, metadata={"help": "Per-request timeout"})
    max_retries: int = field(default=4, metadata={"help": "Retries with exponential backoff per request"})
    parallel: int = field(default=4, metadata={"help": "Concurrent requests"})
    token_budget: int | None = field(default=None, metadata={"help": "Stop when prompt+completion tokens exceed this"})


@dataclass
class SearchOptions:
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    size: str = field(default="full", metadata={"help": "full or smoke"})
    budget: int = field(default=16, metadata={"help": "Most candidates to judge (LLM-free policy)"})
    rounds: int = field(default=3, metadata={"help": "LLM rounds"})
    samples: int = field(default=4, metadata={"help": "LLM samples per round"})
    exemplars: int = field(default=2, metadata={"help": "Earlier implementations shown in a contrastive prompt (N)"})
    exemplar_selection: str = field(default="bucket", metadata={"help": "bucket, random, topk or island"})
    tau: float = field(default=1.0, metadata={"help": "Bucket-sampling temperature"})
    wall_time_s: float | None = field(default=None, metadata={"help": "Stop after this many seconds (rules: checked before each batch and after each verdict; LLM: before each round)"})
    out_dir: str = field(default="cudal1-out", metadata={"help": "Where the best candidate and the report are written"})
    db: str | None = field(default=None, metadata={"help": "SQLite store path (default $CUDAL1_DB or ./.cudal1/cudal1.db in the working directory)"})
    allow_lower_precision: bool = field(default=False, metadata={"help": "Allow TF32/fp16/bf16 candidates (reported separately)"})
    seed_with_rules: bool = field(default=True, metadata={"help": "Seed the LLM exemplar pool with the LLM-free optimizer's candidates"})
    llm: LLMOptions = field(default_factory=LLMOptions)
