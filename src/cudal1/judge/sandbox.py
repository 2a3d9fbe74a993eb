"""Running untrusted candidates: environment scrubbing, resource limits and isolation levels.

Levels (the strongest the host supports is the default; the verdict records the one applied):

- ``strict``: bubblewrap: the root file system read-only, the work and build folders writable,
  a private /tmp, no network (own network namespace), own PID namespace, dies with the judge.
- ``basic``: an own network namespace through ``unshare`` when the host allows it, plus the
  resource limits, the scrubbed environment and a fresh working folder.
- ``off``: a plain child process (still its own process, still a scrubbed environment).
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys

# Variables a candidate process may see; everything else (API keys, tokens, credentials,
# cloud settings) is dropped.
ENV_ALLOW = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "CUDA_PATH",
    "LD_LIBRARY_PATH", "PYTHONPATH", "TORCH_CUDA_ARCH_LIST", "CC", "CXX", "MAX_JOBS",
    "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS", "VIRTUAL_ENV",
    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
)
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "COOKIE")


def scrubbed_env(work_dir: str, build_dir: str, threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOW and not any(m in k.upper() for m in SECRET_MARKERS)}
    env.update(
        HOME=work_dir,
        TMPDIR=work_dir,
        TORCH_EXTENSIONS_DIR=os.path.join(build_dir, "torch_extensions"),
        TRITON_CACHE_DIR=os.path.join(build_dir, "triton"),
        TORCHINDUCTOR_CACHE_DIR=os.path.join(build_dir, "inductor"),
        XDG_CACHE_HOME=os.path.join(build_dir, "xdg"),
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


def wrap_command(cmd: list[str], level: str, writable: list[str], device: str,
                 hidden: list[str] = ()) -> tuple[list[str], str]:
    """Prefix ``cmd`` with the isolation of ``level``. Returns (command, description).

    ``hidden`` folders (the judge's cache: expected outputs, seeds) are covered by an empty
    tmpfs under ``strict``; ``writable`` folders inside them are bound back afterwards."""
    if level == "strict":
        args = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc",
                "--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
        for path in hidden:
            if os.path.isdir(path):
                args += ["--tmpfs", path]
        for path in writable:
            args += ["--bind", path, path]
        return args + cmd, ("strict: bubblewrap (read-only root, judge cache hidden, writable work/build dirs, "
                            "no network, own PID namespace)")
    if level == "basic":
        exe = shutil.which("unshare")
        if exe and _probe((exe, "--net", "true")):
            return [exe, "--net"] + cmd, "basic: own network namespace (no network), resource limits, scrubbed env"
        if exe and _probe((exe, "--net", "--user", "--map-root-user", "true")):
            return [exe, "--net", "--user", "--map-root-user"] + cmd, "basic: user+network namespace (no network), resource limits, scrubbed env"
        return cmd, "basic: resource limits, scrubbed env (no network isolation on this host)"
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
