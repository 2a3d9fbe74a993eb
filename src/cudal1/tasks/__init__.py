"""Tasks: the KernelBench-compatible contract, the built-in suite and loaders."""

from .contract import SIZES, Task, exec_task_module, parse_task_id, source_hash
from .loader import BUILTIN_DIR, SuiteLoad, TaskLoadError, check_task_source, load_suite, load_task_file, resolve_task

__all__ = [
    "SIZES", "Task", "exec_task_module", "parse_task_id", "source_hash", "BUILTIN_DIR", "SuiteLoad",
    "TaskLoadError", "check_task_source", "load_suite", "load_task_file", "resolve_task",
]
