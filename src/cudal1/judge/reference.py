"""The seeds of one evaluation, drawn fresh and held only in the parent's memory.

Nothing about an evaluation's inputs or expected outputs is written where a candidate could
read it ahead: the reference runs live in every evaluation (its process, like the candidate's,
gets each request's seeds only when it is asked), its outputs are read into the parent's memory
and their files deleted at once.
"""

from __future__ import annotations

import json
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


def read_cache_table(path: Path) -> dict:
    """A small JSON table the judge keeps in its cache (`pace.json`, `output_bytes.json`); empty
    when the file is missing or unreadable (such a table only saves work)."""
    try:
        table = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def write_cache_table(path: Path, table: dict) -> None:
    """Replace the table at ``path`` at once (a reader never sees half a file); a file that
    cannot be written costs only what it would have saved."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass


class OutputSizes:
    """The reference's output bytes per reference key (`Judge.reference_key`), kept in a small
    JSON file in the judge's cache, which the sandbox hides from candidates: a judge that knows a
    task's output size sizes the candidate's allocator poison without waiting for the
    reference's trials, so both sides run them at once, from a task's first evaluation in a
    later run on this machine too. A file that cannot be read or written costs only that."""

    def __init__(self, path: Path):
        self.path = path
        self._table: dict[str, int] | None = None

    def _loaded(self) -> dict[str, int]:
        if self._table is None:
            self._table = {k: v for k, v in read_cache_table(self.path).items() if isinstance(v, int) and v >= 0}
        return self._table

    @staticmethod
    def _key(key: tuple) -> str:
        return "|".join(map(str, key))

    def get(self, key: tuple) -> int | None:
        return self._loaded().get(self._key(key))

    def __setitem__(self, key: tuple, nbytes: int) -> None:
        table = self._loaded()
        if table.get(self._key(key)) == nbytes:
            return
        table[self._key(key)] = int(nbytes)
        write_cache_table(self.path, table)


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
