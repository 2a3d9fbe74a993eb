"""Parent side of a worker process: start it (sandboxed for candidates), send commands, read
replies with deadlines, and always clean up its whole process group."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import protocol, sandbox


WARM_TIMEOUT_S = 120.0  # a deferred device warm-up (CUDA context, cuBLAS, the profiler's first session)
WORKER_ENTRY = "import sys, importlib; sys.exit(importlib.import_module('cudal1.judge.worker').main(sys.argv[1:]))"


class WorkerDied(Exception):
    def __init__(self, message: str, log_tail: str = ""):
        super().__init__(message)
        self.log_tail = log_tail


class WorkerTimeout(Exception):
    pass


@dataclass
class WorkerSpec:
    role: str  # "reference" | "candidate"
    device: str
    work_dir: str
    build_dir: str
    sandbox_level: str = "off"
    threads: int = 1
    cpu_time_limit_s: float = 900.0
    file_size_limit_mb: float = 16384.0
    max_processes: int = 512
    memory_limit_gb: float = 16.0
    hidden: tuple[str, ...] = ()
    warm_device: bool = False  # on CUDA: create the context (and cuBLAS's handle) at start-up
    warm_profiler: bool = False  # with warm_device: also open and close one profiler session
    # with warm_device: start without touching the device; the warm-up runs on `warm_ahead`'s
    # request, or before the first other request (a spare started while another evaluation runs)
    defer_warm: bool = False


def _src_root() -> str:
    return str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Pending:
    """A request sent and not yet answered."""
    name: str
    expected: type
    t0: float


class WorkerProcess:
    """One worker. Use as a context manager; ``request`` sends a command and waits for its reply."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.pending: Pending | None = None
        self.sandbox_description = ""
        self.proc: subprocess.Popen | None = None
        self.settings: sandbox.ProcessSettings | None = None
        self._warming: Pending | None = None  # the deferred warm-up, sent and not yet answered
        self._warm_sent = False

    def __enter__(self) -> "WorkerProcess":
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        s = self.spec
        os.makedirs(s.work_dir, exist_ok=True)
        os.makedirs(s.build_dir, exist_ok=True)
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        level = s.sandbox_level if s.role == "candidate" else "off"
        # The build folder lies in the judge's cache: the sandbox shows it at a neutral path.
        seen_build = sandbox.worker_build_dir(level, s.build_dir)
        env = sandbox.scrubbed_env(s.work_dir, s.build_dir, s.threads, build_path=seen_build)
        # The package must be importable in the child even when run from a source tree.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_src_root(), env.get("PYTHONPATH", "")) if p)
        # ``-c`` rather than ``-m``: the worker module must not be ``__main__``, where a candidate
        # could reach it with a plain ``import __main__`` (see worker.main).
        warm = ("warm-profiler" if s.warm_profiler else "warm") if s.warm_device else "-"
        if s.warm_device and s.defer_warm:
            warm = "later-" + warm
        cmd = [sandbox.python_exe(), "-c", WORKER_ENTRY, s.role, str(p2c_r), str(c2p_w), s.device, warm]
        cmd, self.sandbox_description = sandbox.wrap_command(cmd, level, [s.work_dir, s.build_dir], s.device, s.hidden,
                                                             seen_at={s.build_dir: seen_build})
        self.log_path = os.path.join(s.work_dir, f"{s.role}.log")
        self._log = open(self.log_path, "wb")
        preexec = sandbox.limits_preexec(s.cpu_time_limit_s, s.file_size_limit_mb, s.max_processes, s.memory_limit_gb, s.device) \
            if s.role == "candidate" else os.setsid
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=s.work_dir, env=env,
            pass_fds=(p2c_r, c2p_w), preexec_fn=preexec, close_fds=True,
        )
        os.close(p2c_r)
        os.close(c2p_w)
        try:  # what the reference's process must keep (see Judge.check_reference_process)
            self.settings = sandbox.ProcessSettings.of(self.proc.pid)
        except OSError:
            self.settings = None
        self._tx = os.fdopen(p2c_w, "w", encoding="utf-8")
        self._rx_fd = c2p_r
        self._buf = b""

    def wait_ready(self, timeout_s: float) -> bool:
        """Block until the process has finished starting (its imports answer a ping). False if it
        died or did not answer: the evaluation that takes it over reports that itself."""
        try:
            return isinstance(self.request(protocol.Ping(), timeout_s)[0], protocol.Pong)
        except (WorkerDied, WorkerTimeout, protocol.ProtocolError):
            return False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            self._log.flush()
            data = Path(self.log_path).read_bytes()
            return data[-chars:].decode("utf-8", "replace")
        except OSError:
            return ""

    def request(self, msg, timeout_s: float):
        """Send a request and wait for its reply: ``(reply, wall_s)``, where ``reply`` is the reply
        type `protocol.REPLY_TO` names or a `protocol.Failure`, and ``wall_s`` is this process's
        own clock from sending to the reply's arrival. Raises `protocol.ProtocolError` for
        anything else on the reply channel."""
        return self.receive(self.send(msg), timeout_s)

    def warm_ahead(self):
        """Ask a process started with ``defer_warm`` to warm its device now, without waiting: the
        reply is taken before its next request. Nothing for any other process, or once sent."""
        s = self.spec
        if (not (s.warm_device and s.defer_warm) or self._warm_sent or self.pending is not None
                or self.proc is None or self.proc.poll() is not None):
            return
        self._warm_sent = True
        try:
            self._warming = self.send(protocol.WarmDevice())
        except WorkerDied:  # the request that takes the process over reports it
            self._warming = None

    def _settle_warm(self):
        """Wait for the deferred warm-up's reply (a failure there shows again in the next request)."""
        warming, self._warming = self._warming, None
        try:
            self.receive(warming, WARM_TIMEOUT_S)
        except (WorkerDied, WorkerTimeout, protocol.ProtocolError):
            pass

    def send(self, msg) -> Pending:
        """Send a request without waiting; `receive` waits for its reply. One request at a time
        (a deferred warm-up still running is waited for first)."""
        if self._warming is not None and self.pending is self._warming:
            self._settle_warm()
        if self.pending is not None:
            raise RuntimeError(f"{type(msg).__name__} sent while {self.pending.name} waits for its reply")
        t0 = time.monotonic()  # before the write: the worker may start before write() returns
        try:
            self._tx.write(protocol.encode(msg))
            self._tx.flush()
        except (BrokenPipeError, OSError):
            raise WorkerDied(self._death_message(), self.log_tail()) from None
        self.pending = Pending(type(msg).__name__, protocol.REPLY_TO[type(msg)], t0)
        return self.pending

    def receive(self, pending: Pending, timeout_s: float):
        """The reply to ``pending`` (see `request`); its timeout counts from now. The request is
        no longer pending afterwards, answered or not (a process that timed out or died is not
        asked again)."""
        try:
            return self._receive(pending, timeout_s)
        finally:
            self.pending = None

    def _receive(self, pending: Pending, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerTimeout(f"no answer to {pending.name} within {timeout_s:.0f} s")
            ready, _, _ = select.select([self._rx_fd], [], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    raise WorkerDied(self._death_message(), self.log_tail())
                continue
            chunk = os.read(self._rx_fd, 1 << 20)
            if not chunk:
                self.proc.wait(timeout=5)
                raise WorkerDied(self._death_message(), self.log_tail())
            self._buf += chunk
        wall_s = time.monotonic() - pending.t0
        line, self._buf = self._buf.split(b"\n", 1)
        if self._buf.strip():
            raise protocol.ProtocolError("more than one reply to one request")
        return protocol.decode(line, {pending.expected.__name__: pending.expected, "Failure": protocol.Failure}), wall_s

    def _death_message(self) -> str:
        code = self.proc.poll() if self.proc else None
        if code is None:
            return "the process stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return f"the process was killed by {name}"
        return f"the process exited with status {code}"

    def close(self):
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                try:
                    self._tx.write(protocol.encode(protocol.Exit()))
                    self._tx.flush()
                    self.proc.wait(timeout=3)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the whole group: children and runaway processes
            except (ProcessLookupError, PermissionError, OSError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for f in (self._tx,):
                try:
                    f.close()
                except OSError:
                    pass
            try:
                os.close(self._rx_fd)
            except OSError:
                pass
            self._log.close()
            self.proc = None
