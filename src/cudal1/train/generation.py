"""Sampling the policy locally with transformers ``generate`` (stage 2; vLLM is stage 3's option)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import SamplingArgs
from .modeling import prompt_for_generation


@dataclass(frozen=True)
class Sample:
    prompt_index: int
    text: str
    completion_tokens: int
    finished: bool  # ended with EOS (False: hit max_new_tokens)


def generate(model, tokenizer, prompts: list[str], sampling: SamplingArgs, seed: int | None = None) -> list[Sample]:
    """``sampling.num_samples`` completions of each prompt (one when greedy), batched ``batch_size`` sequences at a time."""
    import torch

    greedy = sampling.temperature <= 0
    n = 1 if greedy else sampling.num_samples
    if seed is not None:
        torch.manual_seed(seed)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = tokenizer.eos_token_id
    texts = [prompt_for_generation(tokenizer, p) for p in prompts]
    per_call = max(1, sampling.batch_size // n)
    out: list[Sample] = []
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only models continue from the last prompt token
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(texts), per_call):
            chunk = texts[start:start + per_call]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            kwargs = dict(max_new_tokens=sampling.max_new_tokens, pad_token_id=pad, num_return_sequences=n)
            if greedy:
                kwargs.update(do_sample=False)
            else:
                kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
            with torch.no_grad():
                seqs = model.generate(**enc, **kwargs)
            new = seqs[:, enc["input_ids"].shape[1]:]
            for row in range(new.shape[0]):
                ids = new[row].tolist()
                finished = eos is not None and eos in ids
                if finished:
                    ids = ids[:ids.index(eos)]
                while ids and ids[-1] == pad:
                    ids.pop()
                out.append(Sample(start + row // n, tokenizer.decode(ids, skip_special_tokens=True), len(ids), finished))
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return out
