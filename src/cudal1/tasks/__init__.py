"""Tasks: the KernelBench-compatible contract, the built-in suite and loaders."""

from .contract import SIZES, Task, exec_task_module, parse_task_id, source_hash
from .loader import (
    BUILTIN_DIR, SuiteLoad, TaskFile, TaskLoadError, TaskSkipped, check_task_source, find_task_file, load_suite,
    load_task_file, resolve_task, task_files,
)

__all__ = [
    "SIZES", "Task", "exec_task_module", "parse_task_id", "source_hash", "BUILTIN_DIR", "SuiteLoad",
    "TaskFile", "TaskLoadError", "TaskSkipped", "check_task_source", "find_task_file", "load_suite", "load_task_file",
    "resolve_task", "task_files",
]
