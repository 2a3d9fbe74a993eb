"""Store: SQLite (WAL) of tasks, candidates, verdicts, runs and baselines."""

from .records import Candidate

__all__ = ["Candidate"]
