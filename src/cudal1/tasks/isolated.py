"""Checking task files that may wait at import, in a separate process with a time limit.

A KernelBench level-4 task builds a Hugging Face model at import: ``AutoConfig.from_pretrained``
asks the hub first, and with no network that waits for minutes. The loader sends such files (those
importing anything beyond torch, numpy and a few pure modules, see ``loader.needs_isolation``) here:
one worker process checks them one by one with the Hugging Face libraries offline
(``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``) and every socket refused, so a file that needs
the network fails at once, and a file that still waits longer than the limit (a sleep, a lock) is
given up. A model already in the Hugging Face cache loads as usual.

The limit is wall-clock time, extended while the worker is computing (it used at least
`BUSY_CPU_SHARE` of the time on a CPU, as a large import on a loaded machine does) up to
`MAX_EXTENSIONS` times: a file that waits is given up after the limit, one that works is not.
The worker interrupts a file itself (a timer signal), so that it goes on with the next one; when
the file does not return to Python (stuck in C code), the caller kills the worker `GRACE_S` later
and starts another.

The worker's own stdout and stderr are discarded, so whatever a task prints or warns at import
does not reach the terminal; the number of Python warnings comes back instead.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
STARTUP_TIMEOUT_S = 120.0  # importing torch in the worker; no task code runs before "ready"
# What a Hugging Face library says when it wanted the hub and could not have it.
OFFLINE_ERROR_RE = re.compile(r"offline|couldn't connect|internet connection|LocalEntryNotFound|network disabled|"
                              r"network is unreachable|name resolution|name or service not known", re.I)
REFUSED = "network disabled while cudal1 checks task files"
BUSY_CPU_SHARE = 0.25
MAX_EXTENSIONS = 11
GRACE_S = 2.0


@dataclass(frozen=True)
class Checked:
    """What the worker found for one file: input specs, or a problem (and its fix)."""

    specs: tuple[str, ...] = ()
    problem: str = ""
    fix: str = ""
    needs_network: bool = False
    timed_out: bool = False
    waited_s: float = 0.0
    warnings: int = 0


class IsolatedChecker:
    """One worker process; ``check(path, size)`` answers within ``timeout_s`` or gives the file up.
    ``offline=False`` leaves the network on (for one task the caller asked for by name).

    Started on construction, so that the worker imports torch while the caller does other work."""

    def __init__(self, timeout_s: float, offline: bool = True):
        self.timeout_s, self.offline = timeout_s, offline
        self._proc: subprocess.Popen | None = None
        self._buf = b""
        self._ready = False
        self._mark: tuple[float, float | None] = (0.0, None)
        self._start_failed: Checked | None = None
        self._start()

    def _start(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])  # this cudal1, installed or not
        env = {**os.environ, **(OFFLINE_ENV if self.offline else {}),
               "CUDAL1_CHECK_OFFLINE": "1" if self.offline else "0",
               "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from cudal1.tasks.isolated import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0,
        )
        self._buf, self._ready = b"", False

    def _read_message(self, deadline: float) -> dict | None:
        """The worker's next JSON line; None when the deadline passes first. EOFError when it died."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def check(self, path: str, size: str) -> Checked:
        if self._start_failed:
            return self._start_failed
        if self._proc is None:
            self._start()
        if not self._ready:
            try:
                self._ready = self._read_message(time.monotonic() + STARTUP_TIMEOUT_S) is not None
            except EOFError:
                pass
            if not self._ready:
                self.close()
                self._start_failed = Checked(problem="could not be checked: the checking process did not start",
                                             fix=f"check that `{sys.executable} -c 'import torch, cudal1'` works")
                return self._start_failed
        try:
            assert self._proc is not None and self._proc.stdin is not None
            self._mark = (started := time.monotonic(), self._cpu_seconds())
            request = {"path": path, "size": size, "timeout_s": self.timeout_s}
            self._proc.stdin.write((json.dumps(request) + "\n").encode())
            message = self._read_message(time.monotonic() + self.timeout_s + GRACE_S)
            for _ in range(MAX_EXTENSIONS):
                if message is not None or not self._was_busy():
                    break
                message = self._read_message(time.monotonic() + self.timeout_s)
        except (EOFError, BrokenPipeError):
            code = self._proc.wait() if self._proc else None
            self.close()
            return Checked(problem=f"ends the process that imports it (exit status {code})",
                           fix="a task module must not exit or crash at import")
        if message is None or message.get("timed_out"):
            if message is None:
                self.close()
            return Checked(timed_out=True, waited_s=time.monotonic() - started)
        return Checked(
            specs=tuple(message.get("specs", ())), problem=message.get("problem", ""), fix=message.get("fix", ""),
            needs_network=bool(message.get("network")) or bool(OFFLINE_ERROR_RE.search(message.get("problem", ""))),
            warnings=int(message.get("warnings", 0)),
        )

    def _cpu_seconds(self) -> float | None:
        """CPU time the worker has used (Linux ``/proc``); None where that cannot be read."""
        try:
            with open(f"/proc/{self._proc.pid}/stat") as f:  # type: ignore[union-attr]
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def _was_busy(self) -> bool:
        """Whether the worker computed (rather than waited) for `BUSY_CPU_SHARE` of the last limit."""
        now, cpu = time.monotonic(), self._cpu_seconds()
        last_wall, last_cpu = self._mark
        self._mark = (now, cpu)
        return cpu is not None and last_cpu is not None and cpu - last_cpu >= BUSY_CPU_SHARE * (now - last_wall)

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
            self._proc = None

    def __enter__(self) -> "IsolatedChecker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- the worker ------------------------------------------------------------------------------
_network_wanted = False


def _refuse_network() -> None:
    """Every socket connection and name lookup in this (worker) process fails at once."""
    import socket

    def refuse(*args, **kwargs):
        global _network_wanted
        _network_wanted = True
        raise OSError(101, REFUSED)

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]
    socket.getaddrinfo = refuse  # type: ignore[assignment]


class _WaitedTooLong(BaseException):
    """Raised in the worker when a file's time is up (a BaseException: task code catching
    ``Exception`` does not swallow it)."""


def _start_clock(limit_s: float) -> None:
    """Interrupt the current file after ``limit_s`` seconds of waiting; computing extends it."""
    mark = [time.monotonic(), time.process_time(), 0]

    def on_alarm(signum, frame):
        now, cpu = time.monotonic(), time.process_time()
        busy = cpu - mark[1] >= BUSY_CPU_SHARE * (now - mark[0])
        mark[:] = [now, cpu, mark[2] + 1]
        if busy and mark[2] <= MAX_EXTENSIONS:
            signal.setitimer(signal.ITIMER_REAL, limit_s)
            return
        raise _WaitedTooLong

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)


def serve() -> None:
    """Worker main: one JSON request per stdin line, one JSON answer per line on the original stdout."""
    global _network_wanted
    import warnings

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # what task modules print stays out of the answers and off the terminal
    os.dup2(devnull, 2)
    if os.environ.get("CUDAL1_CHECK_OFFLINE") != "0":
        _refuse_network()
    import torch  # noqa: F401 - every task imports it: pay for it before any file's clock starts

    from .loader import TaskLoadError, check_task_source

    answers.write('{"ready": true}\n')
    for line in sys.stdin:
        request = json.loads(line)
        _network_wanted = False
        answer: dict = {}
        with warnings.catch_warnings(record=True) as caught:
            try:
                _start_clock(float(request["timeout_s"]))
                with open(request["path"], encoding="utf-8") as f:
                    source = f.read()
                answer["specs"] = list(check_task_source(source, request["path"], size=request["size"]))
            except TaskLoadError as e:
                answer.update(problem=e.problem, fix=e.fix)
            except _WaitedTooLong:
                answer["timed_out"] = True
            except (SystemExit, Exception) as e:  # noqa: BLE001 - anything a task does is an answer, not a crash
                answer.update(problem=f"fails on import: {type(e).__name__}: {e}", fix="the module must import cleanly")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        answer.update(network=_network_wanted, warnings=len(caught))
        answers.write(json.dumps(answer) + "\n")
