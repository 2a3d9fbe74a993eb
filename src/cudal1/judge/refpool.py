"""Reference processes kept warm between evaluations of the same task.

The reference is trusted code: its process can serve many evaluations (each sends its own
Setup with fresh seeds, so the model is rebuilt and nothing of one evaluation carries over to
the next), which saves a Python + torch start-up per evaluation. Each process writes into its
own private folder inside the judge's cache (hidden from candidates, emptied as the parent reads
it). A process that failed in any way is closed, never returned. At most `MAX_IDLE` wait; the
rest are closed (and all of them when the interpreter exits).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
import threading
from collections import Counter, OrderedDict
from pathlib import Path

from .process import WorkerProcess

MAX_IDLE = 2

_lock = threading.Lock()
_idle: OrderedDict[tuple, tuple[WorkerProcess, str]] = OrderedDict()
_busy: Counter = Counter()  # keys whose process serves an evaluation now


def acquire(key: tuple, root: Path, spec_for) -> tuple[WorkerProcess, str, bool]:
    """A started reference process for ``key`` and its folder: an idle one when there is one,
    else a new one (``spec_for(folder)`` gives its WorkerSpec). The flag says whether it was
    reused."""
    with _lock:
        found = _idle.pop(key, None)
        _busy[key] += 1
    if found is not None and found[0].proc is not None and found[0].proc.poll() is None:
        return found[0], found[1], True
    if found is not None:
        _retire(*found)
    root.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=f"ref-{secrets.token_hex(6)}-", dir=root)
    os.chmod(folder, 0o700)
    proc = WorkerProcess(spec_for(folder))
    try:
        proc.start()
    except BaseException:
        _retire(proc, folder)
        with _lock:
            _busy[key] -= 1
        raise
    return proc, folder, False


def prestart(key: tuple, root: Path, spec_for) -> WorkerProcess | None:
    """Start a reference process for ``key`` ahead (spawn and imports run in the background) and
    leave it idle in the pool, where the evaluation of that task finds it. Returns the process
    when one was started, None when one for ``key`` already waits or serves an evaluation now
    (the next job is of the same task: that process comes back to the pool when it is done)."""
    with _lock:
        if key in _idle or _busy[key] > 0:
            return None
    proc, folder, _ = acquire(key, root, spec_for)
    release(key, proc, folder, healthy=True)
    return proc


def release(key: tuple, proc: WorkerProcess, folder: str, healthy: bool):
    """Give a process back after an evaluation; an unhealthy one (it failed, or the evaluation
    stopped half-way) is closed with its folder."""
    with _lock:
        _busy[key] -= 1
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        try:
            os.unlink(os.path.join(folder, name))  # nothing of this evaluation stays on disk
        except OSError:
            pass
    if not healthy or proc.proc is None or proc.proc.poll() is not None:
        _retire(proc, folder)
        return
    with _lock:
        old = _idle.pop(key, None)
        _idle[key] = (proc, folder)
        extra = [_idle.popitem(last=False)[1] for _ in range(max(0, len(_idle) - MAX_IDLE))]
    for p, f in ([old] if old else []) + extra:
        _retire(p, f)


def idle_pids() -> set[int]:
    """Process ids of the reference processes waiting in the pool."""
    with _lock:
        return {p.proc.pid for p, _ in _idle.values() if p.proc is not None}


def close_all():
    with _lock:
        items = list(_idle.values())
        _idle.clear()
    for p, f in items:
        _retire(p, f)


def _retire(proc: WorkerProcess, folder: str):
    proc.close()
    shutil.rmtree(folder, ignore_errors=True)


atexit.register(close_all)

__all__ = ["MAX_IDLE", "acquire", "close_all", "idle_pids", "release"]
