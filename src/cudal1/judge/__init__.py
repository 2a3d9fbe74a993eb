"""Judge: builds, runs, checks and times a candidate against its task; returns a `Verdict`."""

from .config import JudgeConfig
from .verdict import VERDICT_FIELDS, VERDICTS, Finding, KernelShare, Verdict

__all__ = ["JudgeConfig", "VERDICT_FIELDS", "VERDICTS", "Finding", "KernelShare", "Verdict"]
from .evaluate import BuildResult, Judge, evaluate, evaluate_many  # noqa: E402

__all__ += ["BuildResult", "Judge", "evaluate", "evaluate_many"]
