"""The task contract (KernelBench-compatible) and the `Task` record.

A task file defines ``class Model(nn.Module)``, ``get_inputs()`` (the forward arguments),
``get_init_inputs()`` (the constructor arguments) and module-level size constants. A
built-in task may also define ``SMOKE = {...}``: size constants that replace the full ones
when the task is loaded with ``size="smoke"`` (small enough for 2 CPU cores).

A candidate defines ``class ModelNew(nn.Module)`` with Model's constructor and forward
signatures.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import types
from dataclasses import asdict, dataclass, field

SIZES = ("full", "smoke")
TASK_ID_RE = re.compile(r"^level(\d+)/(\d+)_(.+)$")
REQUIRED_NAMES = ("Model", "get_inputs", "get_init_inputs")
SMOKE_RE = re.compile(r"^SMOKE\s*=", re.M)


def defines_smoke(source: str) -> bool:
    """Whether a task source defines ``SMOKE = {...}`` sizes (read from the text, nothing runs)."""
    return SMOKE_RE.search(source) is not None


def source_hash(source: str) -> str:
    """Stable content hash of a task or candidate source (sha256, hex, 16 chars)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    """One reference program. ``id`` is ``levelN/ID_Name``; ``size`` is ``full`` or ``smoke``."""

    id: str
    level: int
    name: str
    source: str
    source_hash: str
    path: str | None = None
    size: str = "full"
    number: int = 0
    suite: str = "builtin"
    input_specs: tuple[str, ...] = field(default=(), compare=False)

    @property
    def has_smoke(self) -> bool:
        return defines_smoke(self.source)

    @property
    def description(self) -> str:
        """The first line of the task's module docstring ("" when it has none or does not parse)."""
        try:
            doc = ast.get_docstring(ast.parse(self.source)) or ""
        except SyntaxError:
            return ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def cache_key(self) -> str:
        """What makes two reference measurements interchangeable (besides device and torch)."""
        return f"{self.source_hash}:{self.size}"

    def with_size(self, size: str) -> "Task":
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}: use one of {', '.join(SIZES)}")
        return Task(**{**asdict(self), "size": size, "input_specs": self.input_specs})

    def to_json(self) -> dict:
        d = asdict(self)
        d["input_specs"] = list(self.input_specs)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Task":
        d = dict(d)
        d["input_specs"] = tuple(d.get("input_specs", ()))
        return cls(**d)

    def dumps(self) -> str:
        return json.dumps(self.to_json())


def parse_task_id(task_id: str) -> tuple[int, int, str]:
    """``level2/17_Conv2d_Min`` -> (2, 17, "Conv2d_Min"). Raises ValueError with the expected form."""
    m = TASK_ID_RE.match(task_id)
    if not m:
        raise ValueError(f"task id {task_id!r} is not of the form levelN/ID_Name (e.g. level1/1_Square_Matmul)")
    return int(m.group(1)), int(m.group(2)), m.group(3)


def exec_task_module(source: str, size: str = "full", module_name: str = "cudal1_task") -> types.ModuleType:
    """Execute a task source in a fresh module and apply the smoke-size override.

    The module is not registered in ``sys.modules``: nothing else can reach it by name.
    Size constants are module globals read at call time by ``get_inputs`` and
    ``get_init_inputs``, so replacing them after execution is enough.
    """
    module = types.ModuleType(module_name)
    module.__dict__["__file__"] = f"<{module_name}>"
    code = compile(source, f"<{module_name}>", "exec")
    exec(code, module.__dict__)  # noqa: S102 - the reference is trusted, the candidate never runs here
    if size == "smoke":
        smoke = module.__dict__.get("SMOKE")
        if smoke is None:
            raise ValueError("this task has no SMOKE sizes; use --size full (size='full' from Python)")
        if not isinstance(smoke, dict):
            raise ValueError("SMOKE must be a dict of size constants")
        for name, value in smoke.items():
            if name not in module.__dict__:
                raise ValueError(f"SMOKE names {name!r}, which is not a module-level constant of the task")
            module.__dict__[name] = value
    elif size not in SIZES:
        raise ValueError(f"unknown size {size!r}: use one of {', '.join(SIZES)}")
    return module
