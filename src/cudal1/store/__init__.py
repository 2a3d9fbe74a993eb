"""Store: SQLite (WAL) of tasks, candidates, verdicts, runs, baselines and confirmed hacks."""

from .db import Store, config_key, default_db_path
from .migrations import SCHEMA_VERSION
from .records import Candidate

__all__ = ["Candidate", "SCHEMA_VERSION", "Store", "config_key", "default_db_path"]
