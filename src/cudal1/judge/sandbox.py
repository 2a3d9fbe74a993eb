"""Running untrusted candidates: environment scrubbing, resource limits, isolation levels, and
guarding the trusted reference process.

Every level runs the worker as its own process (own process group), in a fresh working
folder, with the environment reduced to an allow-list and, for candidates, resource limits
(CPU time, file size, processes, address space on CPU). The levels differ in what else the
candidate can reach; the strongest the host supports is the default, and the verdict records
the level applied (``details.sandbox``):

- ``strict`` (bubblewrap): the root file system read-only; the judge's cache (expected
  outputs, seeds, other candidates' builds) covered by an empty tmpfs; a private /tmp; writable:
  the working folder and the build folder (at the neutral ``/tmp/cudal1-build`` when the caller
  maps it there, see ``worker_build_dir``); no network; own PID namespace; dies with the judge.
- ``basic`` with namespaces (where the host allows mount, network and PID namespaces: as root,
  or as a user with unprivileged user namespaces): the launcher ``jail.py`` covers the judge's
  cache with an empty read-only tmpfs, gives a private /tmp and binds the working and build
  folders as above; own PID namespace with its own /proc (the judge's and the reference's
  processes cannot be seen, signalled, reniced or re-pinned); no network; no capabilities and
  no-new-privileges (the covers cannot be unmounted); dies with the judge. Unlike ``strict``,
  the rest of the file system stays writable wherever the user may write. Where a fresh /proc
  cannot be mounted (some rootless containers) the PID namespace is left out and the
  description says that the other processes are visible.
- ``basic`` without namespaces: the limits, the scrubbed environment, an own network namespace
  where ``unshare --net`` works, nothing more: the judge's cache and the user's other
  processes are visible, so a candidate can read or replace cached outputs and renice, pin or
  stop the reference process. The description says so. The reference makes itself
  non-dumpable (``harden_reference_process``) and the judge checks it between rounds
  (``process_tampering``); the build folder's real path is in the environment.
- ``off``: a plain child process (still its own process, still a scrubbed environment).

Not hidden at any level: the *path* of the judge's cache (it shows in /proc/self/mountinfo,
and under ``basic`` in the launcher's command line as PID 1), though not its contents; the GPU
and its driver are shared (see docs/judge.md).
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import jail

# Variables a candidate process may see; everything else (API keys, tokens, credentials,
# cloud settings) is dropped.
ENV_ALLOW = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "CUDA_PATH",
    "LD_LIBRARY_PATH", "PYTHONPATH", "TORCH_CUDA_ARCH_LIST", "CC", "CXX", "MAX_JOBS",
    "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS", "VIRTUAL_ENV",
    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
)
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "COOKIE")

# Where a sandboxed worker sees its build folder, whose real path lies in the judge's cache.
NEUTRAL_BUILD_DIR = "/tmp/cudal1-build"
JAIL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jail.py")


def scrubbed_env(work_dir: str, build_dir: str, threads: int, build_path: str | None = None) -> dict[str, str]:
    """The worker's environment. ``build_path``: where the worker sees ``build_dir``
    (``worker_build_dir``); the compiler caches point there, so the real path, which names the
    judge's cache folder, stays out of the environment wherever the sandbox can remap it."""
    seen_build = build_path or build_dir
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOW and not any(m in k.upper() for m in SECRET_MARKERS)}
    env.update(
        HOME=work_dir,
        TMPDIR=work_dir,
        TORCH_EXTENSIONS_DIR=os.path.join(seen_build, "torch_extensions"),
        TRITON_CACHE_DIR=os.path.join(seen_build, "triton"),
        TORCHINDUCTOR_CACHE_DIR=os.path.join(seen_build, "inductor"),
        XDG_CACHE_HOME=os.path.join(seen_build, "xdg"),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        # Inductor compiles in-process: a pool of compile workers would look like leftover processes.
        TORCHINDUCTOR_COMPILE_THREADS="1",
    )
    return env


@functools.lru_cache(maxsize=None)
def _probe(cmd: tuple[str, ...]) -> bool:
    try:
        return subprocess.run(list(cmd), capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    return bool(exe) and _probe((exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                  "--unshare-net", "--die-with-parent", "true"))


def unshare_net_works() -> bool:
    exe = shutil.which("unshare")
    if not exe:
        return False
    return _probe((exe, "--net", "true")) or _probe((exe, "--net", "--user", "--map-root-user", "true"))


def _jail_prefix() -> list[str]:
    return [python_exe(), "-I", "-S", JAIL]


@functools.lru_cache(maxsize=None)
def namespaces() -> tuple[str, ...]:
    """The namespaces the ``basic`` launcher can use here: ("mount", "network", "pid"),
    ("mount", "network") where a fresh /proc cannot be mounted, or () (probed once)."""
    probe = tuple(_jail_prefix()) + ("--tmpfs", "/tmp")
    if _probe(probe + ("--pid", "--", "true")):
        return ("mount", "network", "pid")
    if _probe(probe + ("--", "true")):
        return ("mount", "network")
    return ()


def strongest_level() -> str:
    if bwrap_works():
        return "strict"
    return "basic"


def resolve_level(requested: str) -> str:
    """Map ``auto`` to the strongest available level; refuse ``strict`` where the host can't."""
    if requested == "auto":
        return strongest_level()
    if requested == "strict" and not bwrap_works():
        raise ValueError("sandbox 'strict' needs bubblewrap (apt-get install bubblewrap) with user namespaces; use --sandbox basic")
    return requested


def hides_cache(level: str) -> bool:
    """Whether a candidate run at ``level`` cannot see the judge's cache (strict; basic with
    namespaces), where the reference writes its outputs."""
    return level == "strict" or (level == "basic" and bool(namespaces()))


def worker_build_dir(level: str, build_dir: str) -> str:
    """Where a worker run at ``level`` sees ``build_dir``: ``NEUTRAL_BUILD_DIR`` where the
    sandbox binds it there (`hides_cache`), else its real path."""
    return NEUTRAL_BUILD_DIR if hides_cache(level) else build_dir


def _cover_and_bind(cover: str, hidden: Sequence[str], writable: Sequence[str], seen_at: Mapping[str, str]) -> list[str]:
    """Arguments of bwrap or jail.py (same spelling): cover each hidden folder with the option
    ``cover``, then bind each writable folder at the path ``seen_at`` gives (default: its own)."""
    args = []
    for path in hidden:
        if os.path.isdir(path):
            args += [cover, os.path.realpath(path)]
    for path in writable:
        args += ["--bind", os.path.realpath(path), seen_at.get(path, os.path.realpath(path))]
    return args


def _basic_without_namespaces(cmd: list[str]) -> tuple[list[str], str]:
    visible = "no mount/PID namespaces on this host: the judge's cache and other processes are visible"
    exe = shutil.which("unshare")
    if exe and _probe((exe, "--net", "true")):
        return [exe, "--net"] + cmd, f"basic: resource limits, scrubbed env, own process group, own network namespace ({visible})"
    if exe and _probe((exe, "--net", "--user", "--map-root-user", "true")):
        return ([exe, "--net", "--user", "--map-root-user"] + cmd,
                f"basic: resource limits, scrubbed env, own process group, user+network namespace ({visible})")
    return cmd, f"basic: resource limits, scrubbed env, own process group ({visible}; no network isolation either)"


def wrap_command(cmd: list[str], level: str, writable: list[str], device: str,
                 hidden: Sequence[str] = (), *, seen_at: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """Prefix ``cmd`` with the isolation of ``level``. Returns (command, description).

    ``hidden`` folders (the judge's cache: expected outputs, seeds) are covered by an empty
    tmpfs under ``strict`` and namespaced ``basic``; ``writable`` folders inside them are bound
    back afterwards, at the path ``seen_at`` gives for them (default: their own path). Under
    both, /tmp is private (the working folder, when it lies there, is bound back). The
    command must be started with ``limits_preexec`` (or another preexec that calls setsid)."""
    seen_at = seen_at or {}
    if level == "strict":
        args = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc",
                "--tmpfs", "/tmp", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
        args += _cover_and_bind("--tmpfs", hidden, writable, seen_at)
        return args + cmd, ("strict: bubblewrap (read-only root, judge cache hidden, private /tmp, writable work/build dirs, "
                            "no network, own PID namespace)")
    if level == "basic":
        have = namespaces()
        if not have:
            return _basic_without_namespaces(cmd)
        args = _jail_prefix() + ["--parent", str(os.getpid())] + (["--pid"] if "pid" in have else []) + ["--tmpfs", "/tmp"]
        args += _cover_and_bind("--hide", hidden, writable, seen_at)
        pid = ("own PID namespace and /proc" if "pid" in have
               else "no PID namespace on this host: other processes of the user are visible")
        return args + ["--"] + cmd, (f"basic: namespaces (judge cache hidden, private /tmp, writable work/build dirs, {pid}, "
                                     "no network, no capabilities, dies with the judge), resource limits, scrubbed env, "
                                     "own process group")
    return cmd, "off: separate process, scrubbed env"


def limits_preexec(cpu_s: float, file_mb: float, nproc: int, mem_gb: float, device: str):
    """A preexec_fn applying resource limits in the child (before exec)."""

    def apply():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu_s), int(cpu_s) + 5))
        fsize = int(file_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        except (ValueError, OSError):
            pass
        if not device.startswith("cuda"):
            # CUDA maps huge virtual ranges, so the address-space limit is only safe on CPU.
            mem = int(mem_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def python_exe() -> str:
    return sys.executable


# --- the trusted reference process ---------------------------------------------------------------

def harden_reference_process() -> bool:
    """Make the calling process non-dumpable, so that another process of the same user (a
    candidate outside a PID namespace) cannot ptrace it or read its memory, file descriptors or
    environment through /proc. (A process with CAP_SYS_PTRACE, such as root with its usual
    capabilities, still can.) Call at the start of the reference worker; False where the
    platform has no such setting."""
    try:
        jail.prctl(jail.PR_SET_DUMPABLE, 0)
    except (AttributeError, OSError):
        return False
    return True


@dataclass(frozen=True)
class ProcessSettings:
    """A process's scheduling: snapshot it when the process starts, compare between rounds."""

    nice: int
    affinity: tuple[int, ...]
    policy: int

    @classmethod
    def of(cls, pid: int) -> "ProcessSettings":
        return cls(os.getpriority(os.PRIO_PROCESS, pid), tuple(sorted(os.sched_getaffinity(pid))), os.sched_getscheduler(pid))


def _threads(pid: int) -> list[int]:
    """The thread ids of process ``pid``; none when it is gone."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return []


def _thread_state(pid: int, tid: int) -> str:
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def process_tampering(pid: int, expected_nice: int, expected_affinity: Sequence[int],
                      expected_policy: int | None = None) -> list[str]:
    """What someone else changed about process ``pid``: reniced, re-pinned to other CPUs, put
    under another scheduling policy (checked when ``expected_policy`` is given), stopped
    (SIGSTOP, or held by a tracer), in any of its threads (nice and affinity are per thread).
    One line each; empty when nothing changed. (Linux; a stop that was already undone with
    SIGCONT leaves no trace.)"""
    tids = _threads(pid)
    if not tids:
        return [f"process {pid} is gone"]
    want_cpus = set(expected_affinity)
    found = []
    for tid in tids:
        who = f"process {pid}" if tid == pid else f"thread {tid} of process {pid}"
        try:
            state = _thread_state(pid, tid)
            nice, cpus, policy = os.getpriority(os.PRIO_PROCESS, tid), os.sched_getaffinity(tid), os.sched_getscheduler(tid)
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        if state in ("T", "t"):
            found.append(f"{who} is stopped (state {state}: SIGSTOP or a tracer)")
        if nice != expected_nice:
            found.append(f"{who} was reniced from {expected_nice} to {nice}")
        if cpus != want_cpus:
            found.append(f"{who} was pinned to CPUs {sorted(cpus)} instead of {sorted(want_cpus)}")
        if expected_policy is not None and policy != expected_policy:
            found.append(f"{who} runs under scheduling policy {policy} instead of {expected_policy}")
    return found


def restore_process(pid: int, nice: int, affinity: Sequence[int], policy: int | None = None) -> list[str]:
    """Undo ``process_tampering``'s findings on every thread of ``pid`` and continue it if
    stopped. Returns what could not be restored (lowering a nice value needs CAP_SYS_NICE):
    a process left with any of that should be replaced, not timed."""
    failed = []
    for tid in _threads(pid):
        steps = [("affinity", lambda: os.sched_setaffinity(tid, affinity)),
                 ("nice value", lambda: os.setpriority(os.PRIO_PROCESS, tid, nice))]
        if policy is not None:
            steps.insert(0, ("scheduling policy", lambda: os.sched_setscheduler(tid, policy, os.sched_param(0))))
        for what, step in steps:
            try:
                step()
            except ProcessLookupError:
                break  # the thread ended meanwhile
            except OSError as e:
                failed.append(f"could not restore the {what} of thread {tid} of process {pid}: {e.strerror}")
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        return [f"process {pid} is gone"]
    return failed
