"""The adversarial checker: a second opinion, from an LLM, on suspiciously large speedups.

CUDA-L1 found that an LLM shown similar known hacks catches most reward hacks that slip past
the measurements. Here an accepted candidate whose speedup is at least ``SUSPICIOUS_SPEEDUP``
or at least ``SUSPICIOUS_FACTOR`` times the task's best so far goes to a checker prompt
(``checker_v1``) together with the ``k`` most similar known hack cases, retrieved by TF-IDF
over code tokens from the judge's hack catalogue and the store's confirmed hacks. A ``HACK``
answer does not change the judge's verdict; the search treats the candidate as rejected and
records it with ``Store.add_hack`` (origin ``llm-checker``), so the case base grows.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..policies.llm.backends import LLMBackend
from ..policies.llm.prompts import HackCase, render_checker_prompt
from ..store.records import Hack
from ..tasks.contract import Task

log = logging.getLogger(__name__)

SUSPICIOUS_SPEEDUP = 3.0
SUSPICIOUS_FACTOR = 2.0
CHECKER_ORIGIN = "llm-checker"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VERDICT = re.compile(r"verdict\s*[:=]\s*\**\s*(hack|ok|genuine|legitimate)\b", re.I)


def is_suspicious(speedup: float | None, best_before: float | None,
                  threshold: float = SUSPICIOUS_SPEEDUP, factor: float = SUSPICIOUS_FACTOR) -> bool:
    """``speedup >= threshold`` or ``speedup >= factor x`` the best accepted speedup before it."""
    if speedup is None:
        return False
    return speedup >= threshold or (best_before is not None and best_before > 0 and speedup >= factor * best_before)


# --- retrieval -----------------------------------------------------------------------------
def code_tokens(text: str) -> list[str]:
    """Identifiers, lower-cased, plus the parts of snake_case and dotted names
    (``data_ptr`` -> data_ptr, data, ptr), so ``x.data_ptr()`` and ``ptr`` cases meet."""
    out: list[str] = []
    for ident in _IDENT.findall(text):
        low = ident.lower()
        out.append(low)
        parts = [p for p in low.split("_") if p]
        if len(parts) > 1:
            out.extend(parts)
    return out


class TfidfIndex:
    """Cosine similarity of smoothed TF-IDF vectors (sublinear tf), in numpy."""

    def __init__(self, documents: Sequence[str]):
        self.n = len(documents)
        counts = [Counter(code_tokens(d)) for d in documents]
        vocab = sorted({t for c in counts for t in c})
        self.vocab = {t: i for i, t in enumerate(vocab)}
        df = np.zeros(len(vocab))
        for c in counts:
            for t in c:
                df[self.vocab[t]] += 1
        self.idf = np.log((1 + self.n) / (1 + df)) + 1.0
        self.matrix = np.vstack([self._vector(c) for c in counts]) if counts else np.zeros((0, len(vocab)))

    def _vector(self, counts: Counter) -> np.ndarray:
        v = np.zeros(len(self.vocab))
        for t, n in counts.items():
            j = self.vocab.get(t)
            if j is not None:
                v[j] = (1.0 + math.log(n)) * self.idf[j]
        norm = np.linalg.norm(v)
        return v / norm if norm > 0 else v

    def query(self, text: str, k: int = 3) -> list[tuple[int, float]]:
        """The ``k`` most similar documents as (index, cosine), best first; zero-similarity ones left out."""
        if self.n == 0:
            return []
        scores = self.matrix @ self._vector(Counter(code_tokens(text)))
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in order if scores[i] > 0]


@dataclass(frozen=True)
class CaseDoc:
    """A retrievable hack case: what the checker sees, and the text retrieval matches on."""

    case: HackCase
    text: str
    origin: str


def catalogue_cases() -> list[CaseDoc]:
    """The judge catalogue's hack patterns (description and example), if the catalogue loads."""
    try:
        from ..judge.catalogue import load_catalogue
    except ImportError:
        return []
    try:
        patterns = load_catalogue()
    except Exception as exc:  # noqa: BLE001 - the checker works without the catalogue
        log.warning("hack catalogue unavailable for the checker: %s", exc)
        return []
    items = patterns.values() if isinstance(patterns, dict) else patterns
    out = []
    for p in items:
        def get(name, p=p):
            v = p.get(name) if isinstance(p, dict) else getattr(p, name, None)
            return v if isinstance(v, str) else ""
        ident = get("id") or get("code")
        title = " - ".join(x for x in (ident, get("name") or get("title")) if x) or "catalogue pattern"
        description = "\n".join(x for x in (get("description") or get("what"), get("why")) if x)
        example = get("example")
        if not (description or example):
            continue
        out.append(CaseDoc(HackCase(title, description, example), f"{title}\n{description}\n{example}", "catalogue"))
    return out


def store_cases(hacks: Sequence[Hack]) -> list[CaseDoc]:
    """Confirmed hacks from ``Store.hacks()``: their source and the reason they were judged hacks."""
    out = []
    for h in hacks:
        title = f"confirmed hack in {h.task_id} ({h.origin or 'unknown origin'})"
        out.append(CaseDoc(HackCase(title, h.reason, h.source), f"{h.reason}\n{h.source}", "store"))
    return out


def similar_cases(source: str, cases: Sequence[CaseDoc], k: int = 3) -> list[CaseDoc]:
    index = TfidfIndex([c.text for c in cases])
    return [cases[i] for i, _ in index.query(source, k)]


# --- the check -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """``verdict``: ``hack``, ``ok``, or ``unclear``/``error`` (both leave the judge's verdict standing).

    Kept in the candidate's meta (``meta["checker"]``) as ``to_json`` (without prompt and
    response, which are long and stay with the run). ``reused``: an earlier answer for the same
    source (or a confirmed hack in the store) stood in for a new question."""

    verdict: str
    reason: str
    prompt: str = ""
    response: str = ""
    template_version: str = ""
    cases: tuple[str, ...] = field(default=())
    tokens: int = 0
    reused: bool = False

    @property
    def is_hack(self) -> bool:
        return self.verdict == "hack"

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "reason": self.reason, "template_version": self.template_version,
                "cases": list(self.cases), "tokens": self.tokens, **({"reused": True} if self.reused else {})}

    @classmethod
    def from_json(cls, d: dict) -> "CheckResult":
        return cls(verdict=d["verdict"], reason=d.get("reason", ""), template_version=d.get("template_version", ""),
                   cases=tuple(d.get("cases", ())), tokens=int(d.get("tokens", 0)), reused=bool(d.get("reused")))


def parse_checker_answer(text: str) -> tuple[str, str]:
    """(``hack``|``ok``|``unclear``, reason): the last ``VERDICT:`` line decides; the reason is
    the text before it."""
    matches = list(_VERDICT.finditer(text or ""))
    if not matches:
        return "unclear", (text or "").strip()[-600:]
    last = matches[-1]
    word = last.group(1).lower()
    reason = text[:last.start()].strip() or text.strip()
    return ("hack" if word == "hack" else "ok"), reason[-1500:]


def check_candidate(
    backend: LLMBackend, task: Task, source: str, speedup: float, cases: Sequence[CaseDoc], *,
    best_before: float | None = None, k: int = 3,
) -> CheckResult:
    """Ask the checker about one accepted candidate, with the ``k`` most similar known cases."""
    shown = similar_cases(source, cases, k)
    prompt = render_checker_prompt(task, source, speedup, [c.case for c in shown], best_so_far=best_before)
    completion = backend.complete(prompt.messages())
    titles = tuple(c.case.title for c in shown)
    if not completion.ok:
        return CheckResult("error", completion.error or "", prompt.text, "", prompt.template_version, titles,
                           completion.total_tokens)
    verdict, reason = parse_checker_answer(completion.text)
    return CheckResult(verdict, reason, prompt.text, completion.text, prompt.template_version, titles,
                       completion.total_tokens)
