"""Stage 1a (`cudal1 train sft-data`): teacher LLMs rewrite each reference; judged-correct answers become SFT records.

For every task and every teacher, requests go out ``attempts_per_round`` at a time until the
task has ``keep_per_task`` kept variants or the teacher has used ``max_attempts_per_teacher``
attempts on it (CUDA-L1: 2 and 20). A record is the first-round prompt and the teacher's whole
answer (analysis, design, code), so the student learns the answer format too.

Resume: records are appended to the output JSONL as they are kept and the attempt counters
live in ``OUTPUT.state.json``; rerunning the same command continues where a killed run stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..store.records import Candidate
from ..tasks.contract import source_hash
from .checkpoint import append_jsonl, load_state, read_jsonl, save_state
from .common import StoreRecorder, first_prompt, keeps, prompt_device, select_tasks
from .config import SFTDataConfig, to_dict
from .judging import JudgePool
from .metrics import MetricsWriter

log = logging.getLogger(__name__)


@dataclass
class SFTDataResult:
    output: str
    records: int = 0  # records in the output file (all runs)
    new_records: int = 0  # written by this run
    attempts: int = 0  # requests sent by this run
    judged: int = 0
    per_task: dict = field(default_factory=dict)  # task id -> kept records
    tokens: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def state_path(output: str | Path) -> Path:
    return Path(str(output) + ".state.json")


def run_sft_data(cfg: SFTDataConfig, backends: list | None = None,
                 progress: Callable[[str], None] | None = None) -> SFTDataResult:
    """Build the stage-1 dataset. ``backends`` replaces the teachers' backends (one per teacher)."""
    cfg.check()
    from ..policies.llm.backends import make_backend
    from ..policies.llm.parse import parse_response

    start = time.perf_counter()
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tasks = select_tasks(cfg.tasks)
    device = prompt_device(cfg.judge.device)
    backends = backends if backends is not None else [make_backend(t) for t in cfg.teachers]
    if len(backends) != len(cfg.teachers):
        raise ValueError("give one backend per teacher")
    names = [f"{t.model}@{t.base_url or 'local'}" for t in cfg.teachers]
    pool = JudgePool(cfg.judge)
    recorder = StoreRecorder(cfg.db, "train-sft-data", to_dict(cfg), pool)
    metrics = MetricsWriter(out.parent, "sft-data", tensorboard=False)

    state = load_state(state_path(out), {"attempts": {}})
    existing = read_jsonl(out)
    kept_hashes: dict[str, set] = {}
    for r in existing:
        kept_hashes.setdefault(r["task_id"], set()).add(r.get("source_hash") or source_hash(r.get("source", "")))
    result = SFTDataResult(output=str(out), records=len(existing))

    for task in tasks:
        prompt = first_prompt(task, device, cfg.template)
        kept = kept_hashes.setdefault(task.id, set())
        for teacher, backend, name in zip(cfg.teachers, backends, names):
            key = f"{task.id}|{name}"
            while len(kept) < cfg.keep_per_task:
                used = state["attempts"].get(key, 0)
                if used >= cfg.max_attempts_per_teacher:
                    break
                n = min(cfg.attempts_per_round, cfg.max_attempts_per_teacher - used)
                completions = backend.complete_many([prompt.messages()] * n)
                state["attempts"][key] = used + n
                result.attempts += n
                result.tokens += sum(c.total_tokens for c in completions)
                parsed = [parse_response(c.text, c.finish_reason) if c.ok else None for c in completions]
                answered = [(c, p) for c, p in zip(completions, parsed) if p is not None and p.ok]
                verdicts = iter(recorder.judge([
                    (task, Candidate(task.id, p.source, policy=f"teacher:{teacher.model}", strategy="sft-data",
                                     prompt=prompt.text, response=c.text, template_version=prompt.template_version,
                                     meta={"usage": c.usage()}))
                    for c, p in answered]))
                result.judged += len(answered)
                new = []
                for c, p in answered:
                    v = next(verdicts)
                    h = source_hash(p.source)
                    if keeps(v, cfg.keep) and h not in kept and len(kept) < cfg.keep_per_task:
                        kept.add(h)
                        new.append({"task_id": task.id, "size": task.size, "prompt": prompt.text, "completion": c.text,
                                    "source": p.source, "source_hash": h, "teacher": name, "verdict": v.verdict,
                                    "speedup": v.speedup, "template_version": prompt.template_version})
                append_jsonl(out, new)  # records first, then the counters: a kill in between only repeats a round
                save_state(state_path(out), state)
                result.new_records += len(new)
                metrics.write(result.attempts, {"kept": len(new), "judged": len(answered), "requests": n,
                                                "errors": sum(not c.ok for c in completions)})
                if progress:
                    progress(f"{task.id} {name}: {state['attempts'][key]} attempts, {len(kept)} kept")
                if all(not c.ok for c in completions):
                    log.warning("teacher %s returned only errors for %s (%s); moving on", name, task.id,
                                completions[0].error if completions else "no completions")
                    break
        result.per_task[task.id] = len(kept)
    result.records = len(read_jsonl(out))
    result.seconds = time.perf_counter() - start
    recorder.finish()
    return result
