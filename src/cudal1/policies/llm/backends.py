"""LLM backends: any OpenAI-compatible chat-completions server, or local transformers weights.

Both return `Completion` records (text, token usage, finish reason, error) and share a
`TokenBudget`: once prompt + completion tokens pass the budget, no further request is sent.
``openai`` and ``transformers`` are imported lazily, so the core installs without them.

The API key is read from the environment variable named by ``LLMOptions.api_key_env`` at the
moment the client is built; it is never logged, stored or put in a record.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Protocol

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
INSTALL_HINT = "pip install 'cudal1[llm]'"


class LLMUnavailable(RuntimeError):
    """A backend cannot be used here (missing package, missing weights, bad model spec)."""


@dataclass(frozen=True)
class Completion:
    """One chat completion: the text and what it cost. ``error`` is set when no text came back."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    model: str = ""
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def usage(self) -> dict:
        """What the store keeps (in the candidate's meta) about this request."""
        d = asdict(self)
        d.pop("text")
        return d


class TokenBudget:
    """Thread-safe running total of prompt + completion tokens against an optional limit."""

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    def charge(self, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self.prompt_tokens += int(prompt_tokens or 0)
            self.completion_tokens += int(completion_tokens or 0)
            self.requests += 1

    def to_json(self) -> dict:
        return {"limit": self.limit, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "requests": self.requests}


class LLMBackend(Protocol):
    name: str
    budget: TokenBudget

    def complete(self, messages: Messages) -> Completion: ...

    def complete_many(self, conversations: list[Messages]) -> list[Completion]: ...


def _budget_refusal(budget: TokenBudget) -> Completion:
    return Completion(text="", error=f"token budget exhausted ({budget.used} of {budget.limit} tokens used)", attempts=0)


class OpenAIBackend:
    """Chat completions through the official ``openai`` client (vLLM, SGLang, TGI, OpenAI, ...).

    Retries are ours (the client's own are off) so that every attempt is counted: rate limits
    (429), server errors (5xx), timeouts and connection errors are retried with exponential
    backoff and jitter; other errors (400, 401, 404) fail at once.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "CUDAL1_LLM_API_KEY",
        temperature: float = 0.8,
        max_tokens: int = 4096,
        timeout_s: float = 300.0,
        max_retries: int = 4,
        parallel: int = 4,
        budget: TokenBudget | None = None,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ):
        try:
            import openai
        except ImportError:
            raise LLMUnavailable(f"the OpenAI-compatible backend needs the openai package: {INSTALL_HINT}") from None
        self._openai = openai
        self.name = f"openai:{model}"
        self.base_url = base_url
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_retries = max_retries
        self.parallel = max(1, parallel)
        self.budget = budget or TokenBudget()
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        # "EMPTY" is what local servers (vLLM, SGLang) accept when they run without a key.
        api_key = os.environ.get(api_key_env) or "EMPTY"
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)

    def _retryable(self, exc: Exception) -> bool:
        o = self._openai
        if isinstance(exc, (o.APITimeoutError, o.APIConnectionError)):
            return True
        status = getattr(exc, "status_code", 0) if isinstance(exc, o.APIStatusError) else 0
        return status in (408, 409, 429) or status >= 500

    def _delay(self, attempt: int, exc: Exception) -> float:
        retry_after = None
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                retry_after = float(response.headers.get("retry-after"))
            except (TypeError, ValueError):
                retry_after = None
        base = min(self.max_backoff_s, self.backoff_s * (2 ** attempt))
        delay = base * (0.5 + random.random() / 2)  # jitter so parallel workers do not retry in lockstep
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_s))
        return delay

    def complete(self, messages: Messages) -> Completion:
        if self.budget.exhausted:
            return _budget_refusal(self.budget)
        start = time.perf_counter()
        last_error = ""
        for attempt in range(self.max_retries + 1):
            try:
                response = self._client.chat.completions.create(
                    model=self.model, messages=messages, temperature=self.temperature, max_tokens=self.max_tokens,
                )
            except Exception as exc:  # noqa: BLE001 - classified below; never re-raised into the loop
                last_error = f"{type(exc).__name__}: {_short(exc)}"
                if not isinstance(exc, self._openai.OpenAIError) or not self._retryable(exc) or attempt == self.max_retries:
                    log.warning("LLM request failed after %d attempt(s): %s", attempt + 1, last_error)
                    return Completion(text="", model=self.model, latency_s=time.perf_counter() - start,
                                      attempts=attempt + 1, error=last_error)
                delay = self._delay(attempt, exc)
                log.info("LLM request failed (%s); retry %d/%d in %.1fs", last_error, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
                continue
            usage = getattr(response, "usage", None)
            prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
            completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
            self.budget.charge(prompt_tokens, completion_tokens)
            choice = response.choices[0] if response.choices else None
            text = (choice.message.content or "") if choice is not None else ""
            return Completion(
                text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                finish_reason=getattr(choice, "finish_reason", None), model=getattr(response, "model", "") or self.model,
                latency_s=time.perf_counter() - start, attempts=attempt + 1,
                error=None if choice is not None else "the server returned no choices",
            )
        return Completion(text="", model=self.model, attempts=self.max_retries + 1, error=last_error)  # pragma: no cover

    def complete_many(self, conversations: list[Messages]) -> list[Completion]:
        """All conversations, ``parallel`` at a time; results in input order."""
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(conversations)), thread_name_prefix="cudal1-llm") as pool:
            return list(pool.map(self.complete, conversations))


def _short(exc: Exception, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


class HFBackend:
    """Local Hugging Face weights (``--llm-model hf:PATH``), sampled with ``generate``.

    Requests run one after another (one model on one device); the chat template is used when
    the tokenizer has one, otherwise the messages are joined as plain text.
    """

    def __init__(
        self,
        path: str,
        *,
        temperature: float = 0.8,
        max_tokens: int = 4096,
        budget: TokenBudget | None = None,
        device: str | None = None,
    ):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise LLMUnavailable(f"the local transformers backend needs the transformers package: {INSTALL_HINT}") from None
        if not os.path.isdir(path):
            raise LLMUnavailable(f"hf:{path}: no such folder; give the local folder of a saved model (config.json, weights, tokenizer)")
        self._torch = torch
        self.name = f"hf:{path}"
        self.path = path
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.budget = budget or TokenBudget()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).to(self.device).eval()
        self._lock = threading.Lock()

    def _prompt_text(self, messages: Messages) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages) + "\n\n"

    def complete(self, messages: Messages) -> Completion:
        if self.budget.exhausted:
            return _budget_refusal(self.budget)
        start = time.perf_counter()
        try:
            with self._lock:
                enc = self.tokenizer(self._prompt_text(messages), return_tensors="pt", add_special_tokens=False).to(self.device)
                n_prompt = int(enc["input_ids"].shape[1])
                pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
                with self._torch.no_grad():
                    out = self.model.generate(
                        **enc, do_sample=self.temperature > 0, temperature=self.temperature if self.temperature > 0 else None,
                        max_new_tokens=self.max_tokens, pad_token_id=pad,
                    )
                new = out[0, n_prompt:]
                text = self.tokenizer.decode(new, skip_special_tokens=True)
        except Exception as exc:  # noqa: BLE001 - a failed generation is a failed sample, not a crash
            return Completion(text="", model=self.name, latency_s=time.perf_counter() - start, error=f"{type(exc).__name__}: {_short(exc)}")
        n_new = int(new.shape[0])
        eos = self.tokenizer.eos_token_id
        finish = "stop" if (n_new < self.max_tokens or (n_new and eos is not None and int(new[-1]) == eos)) else "length"
        self.budget.charge(n_prompt, n_new)
        return Completion(text=text, prompt_tokens=n_prompt, completion_tokens=n_new, finish_reason=finish,
                          model=self.name, latency_s=time.perf_counter() - start)

    def complete_many(self, conversations: list[Messages]) -> list[Completion]:
        return [self.complete(c) for c in conversations]


def make_backend(options, budget: TokenBudget | None = None) -> LLMBackend:
    """The backend ``LLMOptions`` describe: ``hf:PATH`` models load locally, others need ``base_url``."""
    budget = budget or TokenBudget(options.token_budget)
    model = options.model
    if not model:
        raise LLMUnavailable("no LLM model given: pass --llm-model NAME (with --llm-base-url) or --llm-model hf:PATH")
    if model.startswith("hf:"):
        return HFBackend(model[3:], temperature=options.temperature, max_tokens=options.max_tokens, budget=budget)
    if not options.base_url:
        raise LLMUnavailable(
            f"--llm-model {model} needs --llm-base-url (an OpenAI-compatible server, e.g. http://localhost:8000/v1 "
            "from `vllm serve MODEL --port 8000`), or use hf:PATH for local weights"
        )
    return OpenAIBackend(
        options.base_url, model, api_key_env=options.api_key_env, temperature=options.temperature,
        max_tokens=options.max_tokens, timeout_s=options.timeout_s, max_retries=options.max_retries,
        parallel=options.parallel, budget=budget,
    )
