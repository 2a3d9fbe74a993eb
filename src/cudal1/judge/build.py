"""Stage 1, build: import a candidate once in a sandboxed process, compiling its extensions into a
build folder keyed by source, toolchain and device, so later imports reuse the compiled code."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass

import torch

from ..tasks.contract import Task
from .protocol import ProtocolError, Setup, SetupDone

NEEDS_BUILD_RE = re.compile(r"load_inline|cpp_extension|triton|torch\.compile|cupy")


@dataclass(frozen=True)
class BuildResult:
    ok: bool
    build_s: float
    error: str = ""
    kind: str = ""  # an error kind of protocol.ERROR_VERDICTS (or "crash") when not ok
    cached: bool = False


def toolchain_id() -> str:
    nvcc = shutil.which("nvcc") or ""
    return f"torch{torch.__version__}|cuda{torch.version.cuda}|{nvcc}"


def build_key(source: str, device_name: str) -> str:
    return hashlib.sha256((source + "|" + toolchain_id() + "|" + device_name).encode()).hexdigest()[:20]


def concise_build_error(text: str, limit: int = 12) -> str:
    """The first compiler errors of a build log (what an LLM policy needs to fix it)."""
    lines = text.splitlines()
    picked = [ln.strip() for ln in lines if re.search(r"\berror\b|Error:|undefined reference|fatal", ln)]
    picked = [ln for ln in picked if not ln.startswith("ninja: build stopped")]
    if not picked:
        picked = [ln.strip() for ln in lines if ln.strip()][-limit:]
    seen, out = set(), []
    for ln in picked:
        if ln not in seen:
            seen.add(ln)
            out.append(ln[:400])
    return "\n".join(out[:limit])


def build_candidate(task: Task, source: str, build_dir: str, start_worker, setup: Setup, timeout_s: float) -> BuildResult:
    """Import ``source`` once in a new worker (``start_worker(work_dir, build_dir)`` gives a started
    context-managed process); a ``built.ok`` marker makes the next build of the same key instant."""
    marker = os.path.join(build_dir, "built.ok")
    if os.path.exists(marker):
        return BuildResult(True, 0.0, cached=True)
    os.makedirs(build_dir, exist_ok=True)
    with open(os.path.join(build_dir, ".judge-build"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when this process ends, however it ends
        if os.path.exists(marker):  # built by another job of the same source meanwhile
            return BuildResult(True, 0.0, cached=True)
        _remove_stale_locks(build_dir)
        return _build(build_dir, start_worker, setup, timeout_s, marker)


def _remove_stale_locks(build_dir: str):
    """PyTorch's extension builder marks a build in progress with a ``lock`` file in the
    extension's folder and waits while one exists; a build killed half-way (the judge
    interrupted) leaves it behind, and every later build or import of that source would wait
    forever. Builds into a folder happen only under this judge's lock on it, and imports only
    after a build finished, so a ``lock`` found while holding it is stale."""
    for entry in os.scandir(build_dir):
        stale = os.path.join(entry.path, "lock")
        if entry.is_dir(follow_symlinks=False) and os.path.isfile(stale):
            os.unlink(stale)


def _build(build_dir: str, start_worker, setup: Setup, timeout_s: float, marker: str) -> BuildResult:
    from .process import WorkerDied, WorkerTimeout

    with tempfile.TemporaryDirectory(prefix="cudal1-build-") as work:
        t0 = time.monotonic()
        try:
            with start_worker(work, build_dir) as w:
                reply, _ = w.request(setup, timeout_s)
                tail = w.log_tail(20000)
        except WorkerTimeout:
            return BuildResult(False, time.monotonic() - t0, f"the build took longer than {timeout_s:.0f} s", "timeout")
        except WorkerDied as e:
            return BuildResult(False, time.monotonic() - t0, f"{e}\n{concise_build_error(e.log_tail)}", "crash")
        except ProtocolError as e:
            return BuildResult(False, time.monotonic() - t0, f"the build process sent a malformed reply: {e}", "protocol")
    if not isinstance(reply, SetupDone):
        err = reply.error
        if "Error building extension" in err or "error" in tail.lower():
            err = concise_build_error(tail + "\n" + err)
        return BuildResult(False, time.monotonic() - t0, err, reply.error_kind)
    open(marker, "w").close()
    return BuildResult(True, time.monotonic() - t0)
