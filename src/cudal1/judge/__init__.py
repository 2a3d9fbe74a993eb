"""Judge: builds, runs, checks and times a candidate against its task; returns a `Verdict`."""

from .config import JudgeConfig
from .verdict import VERDICT_FIELDS, VERDICTS, Finding, KernelShare, Verdict

__all__ = ["JudgeConfig", "VERDICT_FIELDS", "VERDICTS", "Finding", "KernelShare", "Verdict"]
