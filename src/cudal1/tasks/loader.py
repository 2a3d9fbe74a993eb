"""Loading tasks: the built-in suite, a KernelBench checkout, or a single file.

Every problem with one task file becomes a `TaskLoadError` naming the file, the problem and
the fix; loading a suite collects those errors and goes on with the other files.
"""

from __future__ import annotations

import ast
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from .contract import REQUIRED_NAMES, SIZES, Task, exec_task_module, source_hash

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent / "builtin"
LEVEL_DIR_RE = re.compile(r"^level(\d+)$")
TASK_FILE_RE = re.compile(r"^(\d+)_(.+)\.py$")


class TaskLoadError(Exception):
    """A task file that cannot be used. ``str()`` is one line: file, problem, fix."""

    def __init__(self, path: str, problem: str, fix: str = ""):
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(f"{path}: {problem}" + (f" ({fix})" if fix else ""))


@dataclass
class SuiteLoad:
    """Tasks that loaded, and one error per file that did not."""

    tasks: list[Task] = field(default_factory=list)
    errors: list[TaskLoadError] = field(default_factory=list)

    def by_id(self) -> dict[str, Task]:
        return {t.id: t for t in self.tasks}


def _describe(value) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return f"{value.dtype}".replace("torch.", "") + str(list(value.shape))
    return repr(value) if len(repr(value)) < 40 else type(value).__name__


def check_task_source(source: str, path: str, size: str = "full") -> tuple[str, ...]:
    """Check a task source against the contract; return a short description of its inputs.

    ``get_inputs`` and ``get_init_inputs`` are called under the ``meta`` device, so no real
    memory is allocated even for full-size tasks.
    """
    import torch

    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        raise TaskLoadError(path, f"does not parse: {e.msg} at line {e.lineno}", "fix the Python syntax") from None
    defined = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    missing = [n for n in REQUIRED_NAMES if n not in defined]
    if missing:
        raise TaskLoadError(
            path,
            f"lacks {', '.join(missing)}",
            "a task defines class Model(nn.Module), get_inputs() and get_init_inputs()",
        )
    try:
        module = exec_task_module(source, size=size)
    except ValueError as e:
        raise TaskLoadError(path, str(e), "define SMOKE = {...} with smaller size constants") from None
    except Exception as e:  # noqa: BLE001 - any failure of user code is reported, not raised
        raise TaskLoadError(path, f"fails on import: {type(e).__name__}: {e}", "the module must import cleanly") from None
    for name in ("get_inputs", "get_init_inputs"):
        try:
            with torch.device("meta"):
                value = module.__dict__[name]()
        except NotImplementedError:
            continue  # an operator without a meta kernel: cannot check cheaply, the judge will
        except Exception as e:  # noqa: BLE001
            raise TaskLoadError(path, f"{name}() raises {type(e).__name__}: {e}", f"make {name}() return a list") from None
        if not isinstance(value, (list, tuple)):
            raise TaskLoadError(path, f"{name}() returns {type(value).__name__}, not a list", f"return a list from {name}()")
        if name == "get_inputs":
            specs = tuple(_describe(v) for v in value)
    return specs if "specs" in locals() else ()


def load_task_file(path: str | Path, size: str = "full", suite: str = "file", level: int | None = None) -> Task:
    """Load one task file. Its id is ``levelN/ID_Name`` from its folder and name when they follow
    KernelBench's layout, else ``level0/0_<stem>``."""
    p = Path(path)
    if size not in SIZES:
        raise TaskLoadError(str(p), f"unknown size {size!r}", f"use one of {', '.join(SIZES)}")
    if not p.is_file():
        raise TaskLoadError(str(p), "no such file", "check the path")
    try:
        source = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TaskLoadError(str(p), f"cannot be read: {e}", "a task is a UTF-8 Python file") from None
    m = TASK_FILE_RE.match(p.name)
    lm = LEVEL_DIR_RE.match(p.parent.name)
    if level is None:
        level = int(lm.group(1)) if lm else 0
    number, name = (int(m.group(1)), m.group(2)) if m else (0, p.stem)
    specs = check_task_source(source, str(p), size=size)
    return Task(
        id=f"level{level}/{number}_{name}",
        level=level,
        name=name,
        source=source,
        source_hash=source_hash(source),
        path=str(p),
        size=size,
        number=number,
        suite=suite,
        input_specs=specs,
    )


def _level_dirs(root: Path) -> list[tuple[int, Path]]:
    for base in (root, root / "KernelBench"):
        found = sorted(
            (int(m.group(1)), d) for d in base.iterdir() if d.is_dir() and (m := LEVEL_DIR_RE.match(d.name))
        ) if base.is_dir() else []
        if found:
            return found
    return []


def load_suite(spec: str | Path = "builtin", size: str = "full", level: int | None = None) -> SuiteLoad:
    """Load a suite: ``"builtin"``, a KernelBench checkout (``levelN/`` folders, or the repository
    root with ``KernelBench/levelN/``), or a folder of task files."""
    suite_name = "builtin" if str(spec) == "builtin" else str(spec)
    root = BUILTIN_DIR if str(spec) == "builtin" else Path(spec)
    result = SuiteLoad()
    if not root.is_dir():
        result.errors.append(TaskLoadError(str(root), "is not a folder", "give 'builtin' or a KernelBench checkout"))
        return result
    levels = _level_dirs(root)
    if not levels:
        result.errors.append(
            TaskLoadError(str(root), "holds no level1/, level2/, ... folders", "point at a KernelBench checkout or its KernelBench/ folder")
        )
        return result
    for lvl, d in levels:
        if level is not None and lvl != level:
            continue
        files = sorted(
            (f for f in d.iterdir() if f.suffix == ".py" and not f.name.startswith("__")),
            key=lambda f: (int(m.group(1)) if (m := TASK_FILE_RE.match(f.name)) else 10**9, f.name),
        )
        for f in files:
            if not TASK_FILE_RE.match(f.name):
                result.errors.append(TaskLoadError(str(f), "is not named ID_Name.py", "rename it, e.g. 12_My_Task.py"))
                continue
            try:
                result.tasks.append(load_task_file(f, size=size, suite=suite_name, level=lvl))
            except TaskLoadError as e:
                log.warning("%s", e)
                result.errors.append(e)
    return result


def resolve_task(ref: str | Path, size: str = "full", suite: str | Path = "builtin") -> Task:
    """A task from a file path, or from an id (``level1/1_Square_Matmul``) in ``suite``.

    A bare id prefix such as ``level1/1`` is accepted when it names exactly one task.
    """
    p = Path(ref)
    if p.suffix == ".py" or p.is_file():
        return load_task_file(p, size=size)
    loaded = load_suite(suite, size=size)
    by_id = loaded.by_id()
    if str(ref) in by_id:
        return by_id[str(ref)]
    matches = [t for t in loaded.tasks if t.id.startswith(f"{ref}_") or t.id.lower() == str(ref).lower()]
    if len(matches) == 1:
        return matches[0]
    for e in loaded.errors:
        if Path(e.path).stem in str(ref):
            raise e
    hint = ", ".join(t.id for t in matches[:5]) if matches else "run `cudal1 tasks list` to see the ids"
    raise TaskLoadError(str(ref), "is neither a task file nor a task id of the suite" if not matches else "is ambiguous", hint)
