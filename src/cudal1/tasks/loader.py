"""Loading tasks: the built-in suite, a KernelBench checkout, or a single file.

Every problem with one task file becomes a `TaskLoadError` naming the file, the problem and
the fix; loading a suite collects those errors and goes on with the other files.

Finding a suite's files and their ids reads only names (`task_files`); a file's module runs only
when the file is loaded. Loading a suite runs each module once, to check it and describe its
inputs: in this process when it imports only torch, numpy and a few pure modules, else in a
separate process with the network off and a time limit (`isolated`), so that a task that builds a
Hugging Face model at import cannot stall a listing.
"""

from __future__ import annotations

import ast
import logging
import re
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .contract import REQUIRED_NAMES, SIZES, Task, exec_task_module, source_hash

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent / "builtin"
LEVEL_DIR_RE = re.compile(r"^level(\d+)$")
TASK_FILE_RE = re.compile(r"^(\d+)_(.+)\.py$")
IMPORT_TIMEOUT_S = 3.0  # per file, for files checked in a separate process (see `needs_isolation`)
# Top-level modules a task may import and still be checked in this process: none of them waits
# at import or reaches the network. Any other import sends the file to the isolated checker.
IN_PROCESS_IMPORTS = frozenset({
    "__future__", "abc", "collections", "copy", "dataclasses", "einops", "enum", "functools", "itertools", "math",
    "numbers", "numpy", "operator", "random", "torch", "typing", "warnings",
})
# Names in a task's code (not its comments or strings) that fetch, build or import at run time.
FETCHING_NAMES = frozenset({
    "hub", "from_pretrained", "urlopen", "urlretrieve", "load_state_dict_from_url", "download_url_to_file",
    "__import__", "import_module", "load_inline",
})


class TaskLoadError(Exception):
    """A task file that cannot be used. ``str()`` is one line: file, problem, fix."""

    def __init__(self, path: str, problem: str, fix: str = ""):
        problem = " ".join(problem.split())  # one line, whatever the exception's text was
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(f"{path}: {problem}" + (f" ({fix})" if fix else ""))


class TaskSkipped(TaskLoadError):
    """A task file that may be fine but could not be checked here: it needs the network at import,
    or its import did not finish within the time limit."""


@dataclass(frozen=True)
class TaskFile:
    """A task file of a suite, found by its name; nothing of it has run."""

    path: Path
    level: int
    number: int
    name: str

    @property
    def id(self) -> str:
        return f"level{self.level}/{self.number}_{self.name}"


@dataclass
class SuiteLoad:
    """Tasks that loaded, one error per file that did not, and how many Python warnings the
    task modules raised while they were checked (counted, not shown)."""

    tasks: list[Task] = field(default_factory=list)
    errors: list[TaskLoadError] = field(default_factory=list)
    warnings: int = 0

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
        raise TaskLoadError(path, str(e), "or define SMOKE = {...} with smaller size constants") from None
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


def needs_isolation(source: str) -> bool:
    """Whether checking this task source should happen in a separate, time-limited process: it
    imports something beyond `IN_PROCESS_IMPORTS` (anywhere in the file), or its code uses one of
    `FETCHING_NAMES` (``torch.hub``, ``from_pretrained``, ...). A file that does not parse is
    checked here (it fails at once)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots = [(node.module or "").split(".")[0]] if not node.level else []
        else:
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            if name in FETCHING_NAMES:
                return True
            continue
        if any(r not in IN_PROCESS_IMPORTS for r in roots):
            return True
    return False


def _read_source(p: Path) -> str:
    if not p.is_file():
        raise TaskLoadError(str(p), "no such file", "check the path")
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TaskLoadError(str(p), f"cannot be read: {e}", "a task is a UTF-8 Python file") from None


def _make_task(f: TaskFile, task_id: str, source: str, size: str, suite: str, specs: tuple[str, ...]) -> Task:
    return Task(
        id=task_id, level=f.level, name=f.name, source=source, source_hash=source_hash(source), path=str(f.path),
        size=size, number=f.number, suite=suite, input_specs=specs,
    )


def _checked_isolated(checker, path: Path, size: str, timeout_s: float) -> tuple[tuple[str, ...], int]:
    """Check one file in ``checker``'s process: (input specs, warnings), or raise what went wrong."""
    checked = checker.check(str(path), size)
    if checked.timed_out:
        raise TaskSkipped(str(path), f"did not finish importing in {checked.waited_s:.0f} s",
                          "a task that waits at import, e.g. for the network, cannot be checked")
    if checked.needs_network:
        raise TaskSkipped(str(path), "needs the network at import",
                          "load it where the network is reachable, or with its model in the Hugging Face cache")
    if checked.problem:
        raise TaskLoadError(str(path), checked.problem, checked.fix)
    return checked.specs, checked.warnings


def load_task_file(
    path: str | Path, size: str = "full", suite: str = "file", level: int | None = None,
    import_timeout_s: float | None = IMPORT_TIMEOUT_S,
) -> Task:
    """Load one task file. Its id is ``levelN/ID_Name`` from its folder and name when they follow
    KernelBench's layout (or ``level`` is given), else the file's stem (``my_task`` for
    ``my_task.py``). Its module runs here, or, when it may wait at import (`needs_isolation`), in a
    separate process with ``import_timeout_s`` seconds (None: here, no limit): offline first, then,
    if it needs the network, once more with the network on."""
    from .isolated import IsolatedChecker

    p = Path(path)
    if size not in SIZES:
        raise TaskLoadError(str(p), f"unknown size {size!r}", f"use --size {' or --size '.join(SIZES)}")
    source = _read_source(p)
    m = TASK_FILE_RE.match(p.name)
    lm = LEVEL_DIR_RE.match(p.parent.name)
    f = TaskFile(p, level if level is not None else int(lm.group(1)) if lm else 0,
                 int(m.group(1)) if m else 0, m.group(2) if m else p.stem)
    task_id = f.id if m and (lm or level is not None) else p.stem
    if import_timeout_s is not None and needs_isolation(source):
        try:
            with IsolatedChecker(import_timeout_s) as checker:
                specs, _ = _checked_isolated(checker, p, size, import_timeout_s)
        except TaskSkipped as e:  # this file was asked for: where the network is up, it may use it
            if "network" not in e.problem:
                raise
            with IsolatedChecker(import_timeout_s, offline=False) as checker:
                specs, _ = _checked_isolated(checker, p, size, import_timeout_s)
    else:
        specs = check_task_source(source, str(p), size=size)
    return _make_task(f, task_id, source, size, suite, specs)


def _level_dirs(root: Path) -> list[tuple[int, Path]]:
    for base in (root, root / "KernelBench"):
        found = sorted(
            (int(m.group(1)), d) for d in base.iterdir() if d.is_dir() and (m := LEVEL_DIR_RE.match(d.name))
        ) if base.is_dir() else []
        if found:
            return found
    return []


def _suite_root(spec: str | Path) -> Path:
    return BUILTIN_DIR if str(spec) == "builtin" else Path(spec)


def task_files(spec: str | Path = "builtin", level: int | None = None) -> tuple[list[TaskFile], list[TaskLoadError]]:
    """The task files of a suite (see `load_suite`) in id order, and one error per misnamed file
    or for a folder that is no suite. Only names are read; no module runs."""
    root = _suite_root(spec)
    if not root.is_dir():
        return [], [TaskLoadError(str(root), "is not a folder", "give 'builtin' or a KernelBench checkout")]
    levels = _level_dirs(root)
    if not levels:
        return [], [TaskLoadError(str(root), "holds no level1/, level2/, ... folders",
                                  "point at a KernelBench checkout or its KernelBench/ folder")]
    found: list[TaskFile] = []
    errors: list[TaskLoadError] = []
    for lvl, d in levels:
        if level is not None and lvl != level:
            continue
        files = sorted(
            (f for f in d.iterdir() if f.suffix == ".py" and not f.name.startswith("__")),
            key=lambda f: (int(m.group(1)) if (m := TASK_FILE_RE.match(f.name)) else 10**9, f.name),
        )
        for f in files:
            m = TASK_FILE_RE.match(f.name)
            if m:
                found.append(TaskFile(f, lvl, int(m.group(1)), m.group(2)))
            else:
                errors.append(TaskLoadError(str(f), "is not named ID_Name.py", "rename it, e.g. 12_My_Task.py"))
    return found, errors


def load_suite(
    spec: str | Path = "builtin", size: str = "full", level: int | None = None,
    import_timeout_s: float = IMPORT_TIMEOUT_S,
) -> SuiteLoad:
    """Load a suite: ``"builtin"``, a KernelBench checkout (``levelN/`` folders, or the repository
    root with ``KernelBench/levelN/``).

    Each file's module runs once to check it. Files that import more than torch and a few pure
    modules (`needs_isolation`) run in a separate process with the network off and
    ``import_timeout_s`` seconds each: one that needs the network, or takes longer, becomes a
    `TaskSkipped` error and the rest of the suite loads."""
    from .isolated import IsolatedChecker

    suite_name = "builtin" if str(spec) == "builtin" else str(spec)
    files, errors = task_files(spec, level=level)
    result = SuiteLoad()
    if not files:
        result.errors = errors
        return result
    if size not in SIZES:
        result.errors = [TaskLoadError(suite_name, f"unknown size {size!r}", f"use --size {' or --size '.join(SIZES)}")]
        return result
    outcome: dict[Path, Task | TaskLoadError] = {}
    sources: dict[Path, str] = {}
    for f in files:
        try:
            sources[f.path] = _read_source(f.path)
        except TaskLoadError as e:
            outcome[f.path] = e
    isolated = [f for f in files if f.path in sources and needs_isolation(sources[f.path])]
    in_process = [f for f in files if f.path in sources and f not in isolated]
    isolated_warnings = [0]

    def check_isolated() -> None:  # waits on the worker's answers: runs beside the in-process checks
        with IsolatedChecker(import_timeout_s) as checker:
            for f in isolated:
                try:
                    specs, n_warnings = _checked_isolated(checker, f.path, size, import_timeout_s)
                    isolated_warnings[0] += n_warnings
                    outcome[f.path] = _make_task(f, f.id, sources[f.path], size, suite_name, specs)
                except TaskLoadError as e:
                    outcome[f.path] = e

    beside = threading.Thread(target=check_isolated, name="cudal1-isolated-tasks", daemon=True) if isolated else None
    if beside is not None:
        beside.start()
    with warnings.catch_warnings(record=True) as caught:
        for f in in_process:
            try:
                specs = check_task_source(sources[f.path], str(f.path), size=size)
                outcome[f.path] = _make_task(f, f.id, sources[f.path], size, suite_name, specs)
            except TaskLoadError as e:
                outcome[f.path] = e
    if beside is not None:
        beside.join()
    result.warnings += len(caught) + isolated_warnings[0]
    order = {f.path: i for i, f in enumerate(files)}
    for e in errors:  # misnamed files: in file order with the others
        outcome.setdefault(Path(e.path), e)
    for path in sorted(outcome, key=lambda p: (order.get(p, len(order)), str(p))):
        item = outcome[path]
        if isinstance(item, TaskLoadError):
            log.debug("%s", item)
            result.errors.append(item)
        else:
            result.tasks.append(item)
    return result


def resolve_task(ref: str | Path, size: str = "full", suite: str | Path = "builtin") -> Task:
    """A task from a file path, or from an id (``level1/1_Square_Matmul``) in ``suite``.

    A bare id prefix such as ``level1/1`` is accepted when it names exactly one task. The id of a
    single file outside a KernelBench layout is its stem: ``my_task`` finds ``my_task.py`` in the
    current folder or at the top of the suite's folder. Only the named task's module runs.
    """
    p = Path(ref)
    if p.suffix == ".py" or p.is_file():
        return load_task_file(p, size=size)
    found = find_task_file(ref, suite)
    if isinstance(found, Path):
        return load_task_file(found, size=size)
    return load_task_file(found.path, size=size, suite="builtin" if str(suite) == "builtin" else str(suite),
                          level=found.level)


def find_task_file(ref: str | Path, suite: str | Path = "builtin") -> TaskFile | Path:
    """The file a task reference names, without running it: a `TaskFile` of ``suite`` for an id
    or a unique id prefix, or the `Path` of a single file (``my_task`` -> ``my_task.py``).
    Raises `TaskLoadError` with the ids to choose from."""
    ref = str(ref)
    if "/" not in ref:
        for candidate in (Path(f"{ref}.py"), _suite_root(suite) / f"{ref}.py"):
            if candidate.is_file():
                return candidate
    files, _ = task_files(suite)
    exact = [f for f in files if f.id == ref]
    matches = exact or [f for f in files if f.id.startswith(f"{ref}_") or f.id.lower() == ref.lower()]
    if len(matches) == 1:
        return matches[0]
    hint = ", ".join(f.id for f in matches[:5]) if matches else "run `cudal1 tasks list` to see the ids"
    problem = "is neither a task file nor a task id of the suite" if not matches else "is ambiguous"
    raise TaskLoadError(ref, problem, hint)
