"""From judge verdicts to RL rewards (CUDA-L1's recipe).

1. The speedup of an accepted candidate is re-derived from the judge's per-call timings,
   smoothed: each program's times are split into buckets (7), a bucket whose relative variance
   is above the cut (0.005) is discarded, the program's time is the median of the remaining
   bucket means, and the ratio is rounded toward 1 (a noisy 1.004x never earns more than 1.00x).
2. Every failure (build, run, wrong output, timeout, no code) gets one fixed negative reward;
   a candidate the judge rejected for a hack gets its own (also negative) reward.
3. Rewards are normalized within each group of completions of one prompt and clipped to
   [-k, k] (k = 1.5), so one lucky outlier cannot dominate the policy gradient.

`JudgeReward` is a plain callable with TRL's reward-function keywords: GRPOTrainer calls it
with ``prompts``, ``completions`` and the dataset's extra columns (``task_id``).
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..judge.verdict import Verdict
from ..store.records import Candidate
from ..tasks.contract import Task
from .config import RewardConfig

log = logging.getLogger(__name__)


# --- smoothing -----------------------------------------------------------------------------------


def bucket_means(times: Sequence[float], buckets: int = 7, variance_cut: float = 0.005) -> list[float]:
    """Means of the contiguous buckets of ``times`` whose relative variance is at most the cut.

    Relative variance is ``var(bucket) / mean(bucket)**2`` (the squared coefficient of
    variation), so the cut means the same thing for a 10 us kernel and a 10 ms model.
    """
    times = [float(t) for t in times if t is not None and math.isfinite(t) and t > 0]
    if not times:
        return []
    k = max(1, min(buckets, len(times)))
    size, extra = divmod(len(times), k)
    kept, start = [], 0
    for b in range(k):
        end = start + size + (1 if b < extra else 0)
        chunk = times[start:end]
        start = end
        mean = statistics.fmean(chunk)
        var = statistics.pvariance(chunk, mu=mean) if len(chunk) > 1 else 0.0
        if var / (mean * mean) <= variance_cut:
            kept.append(mean)
    return kept


def smoothed_time(times: Sequence[float], buckets: int = 7, variance_cut: float = 0.005) -> float | None:
    """Median of the kept bucket means; if every bucket is too noisy, the median of all times."""
    kept = bucket_means(times, buckets, variance_cut)
    if kept:
        return statistics.median(kept)
    clean = [float(t) for t in times if t is not None and math.isfinite(t) and t > 0]
    return statistics.median(clean) if clean else None


def round_toward_one(x: float, digits: int = 2) -> float:
    """Round to ``digits`` decimals in the direction of 1.0 (floor above 1, ceil below)."""
    scale = 10 ** digits
    if x >= 1.0:
        return math.floor(x * scale + 1e-9) / scale
    return math.ceil(x * scale - 1e-9) / scale


def smoothed_speedup(verdict: Verdict, cfg: RewardConfig) -> float | None:
    """The bucket-smoothed speedup of an accepted verdict (falls back to ``verdict.speedup``)."""
    if not verdict.accepted:
        return None
    ref, cand = verdict.details.ref_times_ms, verdict.details.candidate_times_ms
    speedup = None
    if ref and cand:
        t_ref = smoothed_time(ref, cfg.buckets, cfg.variance_cut)
        t_cand = smoothed_time(cand, cfg.buckets, cfg.variance_cut)
        if t_ref and t_cand:
            speedup = t_ref / t_cand
    if speedup is None:
        speedup = verdict.speedup
    if speedup is None or not math.isfinite(speedup) or speedup <= 0:
        return None
    return round_toward_one(speedup, cfg.round_digits)


# --- raw reward ----------------------------------------------------------------------------------

STATUSES = ("accepted", "correct", "rejected", "incorrect", "failed", "unparsable")


@dataclass(frozen=True)
class Outcome:
    """What one completion earned before normalization, and why."""

    reward: float
    status: str  # one of STATUSES
    speedup: float | None = None
    verdict: str | None = None


def raw_reward(verdict: Verdict | None, cfg: RewardConfig) -> Outcome:
    """The reward of one judged completion (``None`` = the response held no code)."""
    if verdict is None:
        return Outcome(cfg.unparsable_reward, "unparsable")
    if verdict.verdict == "rejected":
        return Outcome(cfg.hack_reward, "rejected", verdict=verdict.verdict)
    if verdict.accepted:
        s = smoothed_speedup(verdict, cfg)
        if s is not None:
            r = s if cfg.transform == "speedup" else math.log(s)
            return Outcome(r, "accepted", s, verdict.verdict)
        return Outcome(cfg.failure_reward, "failed", verdict=verdict.verdict)
    if verdict.verdict == "incorrect":
        return Outcome(cfg.failure_reward, "incorrect", verdict=verdict.verdict)
    return Outcome(cfg.failure_reward, "failed", verdict=verdict.verdict)


# --- group normalization -----------------------------------------------------------------------


def normalize_groups(rewards: Sequence[float], groups: Sequence, clip: float | None = 1.5, normalize: bool = True,
                     eps: float = 1e-6) -> list[float]:
    """``(r - mean) / std`` within each group (same key in ``groups``), clipped to [-clip, clip].

    A group whose rewards are all equal carries no signal: its normalized rewards are 0.
    With ``normalize=False`` only the clip is applied.
    """
    if len(rewards) != len(groups):
        raise ValueError("rewards and groups must have the same length")
    out = [float(r) for r in rewards]
    if normalize:
        members: dict = {}
        for i, g in enumerate(groups):
            members.setdefault(g, []).append(i)
        for idx in members.values():
            vals = [out[i] for i in idx]
            mean = statistics.fmean(vals)
            std = statistics.pstdev(vals, mu=mean) if len(vals) > 1 else 0.0
            for i in idx:
                out[i] = 0.0 if std < eps else (out[i] - mean) / std
    if clip is not None:
        out = [max(-clip, min(clip, r)) for r in out]
    return out


# --- summary statistics ------------------------------------------------------------------------


@dataclass
class RewardStats:
    """Per-call statistics (logged as metrics)."""

    n: int = 0
    counts: dict = field(default_factory=dict)
    raw_mean: float = 0.0
    speedups: list = field(default_factory=list)
    completion_tokens: int = 0

    def to_metrics(self, prefix: str = "judge/") -> dict[str, float]:
        n = max(1, self.n)
        m = {f"{prefix}{s}_rate": self.counts.get(s, 0) / n for s in STATUSES}
        m[f"{prefix}raw_reward_mean"] = self.raw_mean
        m[f"{prefix}evaluations"] = float(self.n - self.counts.get("unparsable", 0))
        if self.speedups:
            s = sorted(self.speedups)
            m[f"{prefix}speedup_p50"] = statistics.median(s)
            m[f"{prefix}speedup_p90"] = s[min(len(s) - 1, int(0.9 * len(s)))]
            m[f"{prefix}speedup_max"] = s[-1]
            m[f"{prefix}speedup_mean"] = statistics.fmean(s)
            m[f"{prefix}faster_rate"] = sum(x > 1.0 for x in s) / n
        return m


def summarize(outcomes: Sequence[Outcome]) -> RewardStats:
    st = RewardStats(n=len(outcomes))
    for o in outcomes:
        st.counts[o.status] = st.counts.get(o.status, 0) + 1
        if o.speedup is not None:
            st.speedups.append(o.speedup)
    st.raw_mean = statistics.fmean(o.reward for o in outcomes) if outcomes else 0.0
    return st


# --- the reward function -------------------------------------------------------------------------


def completion_text(completion) -> str:
    """TRL passes strings (plain prompts) or message lists (chat prompts)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        last = completion[-1]
        return last.get("content", "") if isinstance(last, dict) else str(last)
    return str(completion)


class JudgeReward:
    """GRPO reward function: parse each completion, judge it, smooth, normalize per prompt, clip.

    ``tasks`` maps task id -> Task; ``judge(items) -> list[Verdict]`` judges ``(task, Candidate)``
    pairs in order (the RL stage's `StoreRecorder.judge`: stored, reused, rejected hacks added to
    the case base); each completion's candidate carries ``policy``, its prompt and its response.
    """

    __name__ = "judge_speedup"  # TRL labels the reward's metrics with this name

    def __init__(self, tasks: dict, judge: Callable[[list[tuple[Task, Candidate]]], list[Verdict]], cfg: RewardConfig,
                 parse: Callable[[str], str | None], policy: str = "rl",
                 on_stats: Callable[[RewardStats], None] | None = None):
        self.tasks = tasks
        self.judge = judge
        self.cfg = cfg
        self.parse = parse
        self.policy = policy
        self.on_stats = on_stats
        self.last_outcomes: list[Outcome] = []
        self.last_stats: RewardStats | None = None
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, prompts, completions, task_id=None, completion_ids=None, log_metric=None, **kwargs) -> list[float]:
        if task_id is None:
            raise ValueError("the RL dataset needs a task_id column: JudgeReward judges each completion against its task")
        texts = [completion_text(c) for c in completions]
        sources = []
        for t in texts:
            try:
                sources.append(self.parse(t))
            except Exception as exc:  # noqa: BLE001 - an unparsable response is a failed sample
                log.debug("could not parse a completion: %s", exc)
                sources.append(None)
        items, where = [], []
        for i, (tid, src) in enumerate(zip(task_id, sources)):
            if src:
                items.append((self.tasks[tid], Candidate(tid, src, policy=self.policy, strategy="rl",
                                                         prompt=_prompt_text(prompts[i]), response=texts[i])))
                where.append(i)
        verdicts: list[Verdict | None] = [None] * len(texts)
        if items:
            for i, v in zip(where, self.judge(items)):
                verdicts[i] = v
        outcomes = [raw_reward(v, self.cfg) for v in verdicts]
        groups = [(tid, _prompt_text(p)) for tid, p in zip(task_id, prompts)]
        rewards = normalize_groups([o.reward for o in outcomes], groups,
                                   clip=self.cfg.clip, normalize=self.cfg.normalize)
        stats = summarize(outcomes)
        if completion_ids is not None:
            stats.completion_tokens = sum(len(c) for c in completion_ids)
        with self._lock:
            self.calls += 1
            self.last_outcomes, self.last_stats = outcomes, stats
        if log_metric is not None:
            for k, v in stats.to_metrics().items():
                log_metric(k, v)
        if self.on_stats is not None:
            self.on_stats(stats)
        return rewards


def _prompt_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "\n".join(m.get("content", "") if isinstance(m, dict) else str(m) for m in prompt)
    return str(prompt)
