"""The seeds of one evaluation, drawn fresh and held only in the parent's memory.

Nothing about an evaluation's inputs or expected outputs is written where a candidate could
read it ahead: the reference runs live in every evaluation (its process, like the candidate's,
gets each request's seeds only when it is asked), its outputs are read into the parent's memory
and their files deleted at once.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .config import JudgeConfig
from .protocol import TrialSpec

INPUT_PROBES = ("negate", "scale", "normal")
PARAM_PROBES = ("reinit", "scale")


def cache_root(config: JudgeConfig) -> Path:
    return Path(config.cache_dir or os.environ.get("CUDAL1_CACHE") or Path.home() / ".cache" / "cudal1")


def _r() -> int:
    return secrets.randbits(31)


@dataclass(frozen=True)
class TimedRound:
    name: str
    seeds: tuple[int, ...]
    fwd_seeds: tuple[int, ...]


@dataclass(frozen=True)
class Seeds:
    init_seed: int
    trials: tuple[TrialSpec, ...]
    rounds: tuple[TimedRound, ...]
    warmup_seed: int

    @classmethod
    def fresh(cls, config: JudgeConfig) -> "Seeds":
        trials = [TrialSpec(f"t{i}", _r(), _r(), repeat_check=i == 0) for i in range(config.trials)]
        if config.robustness_probe:
            trials += [TrialSpec(f"p_{p}", _r(), _r(), probe=p) for p in INPUT_PROBES]
            trials += [TrialSpec(f"w_{p}", _r(), _r(), params=p) for p in PARAM_PROBES]
        per_round = -(-config.timed_calls // config.rounds)
        rounds = tuple(TimedRound(f"r{i}", tuple(_r() for _ in range(per_round)), tuple(_r() for _ in range(per_round)))
                       for i in range(config.rounds))
        return cls(init_seed=_r(), trials=tuple(trials), rounds=rounds, warmup_seed=_r())

    def extra_rounds(self, start: int, count: int) -> list[TimedRound]:
        """``count`` more rounds like the first, with fresh seeds (named on from ``start``)."""
        per_round = len(self.rounds[0].seeds)
        return [TimedRound(f"r{start + i}", tuple(_r() for _ in range(per_round)), tuple(_r() for _ in range(per_round)))
                for i in range(count)]
