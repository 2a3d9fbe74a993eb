"""Launcher of the namespaced ``basic`` sandbox.

Run by file path, ``python -I -S jail.py OPTIONS -- CMD...`` (importing the cudal1 package would
import torch, seconds, before every worker; this file uses the standard library only). It

1. asks for SIGKILL when the judge dies (``--parent PID``: and stops if the judge is gone already);
2. enters new mount and network namespaces, a new PID namespace with ``--pid``, and a new user
   namespace when not root (mapping the user's own uid and gid: the worker stays that user);
3. covers each ``--tmpfs`` folder with an empty writable tmpfs (the private /tmp) and each
   ``--hide`` folder with an empty one made read-only afterwards, and binds each ``--bind SRC DST``
   folder at DST (DST may lie inside a cover: SRC is opened before the covers go on);
4. changes into the working folder again through the new mounts (the inherited one would still
   lead, through ``..``, into the covered folders);
5. with ``--pid``: forks the PID 1 of the new namespace, which mounts a /proc of that namespace,
   forks the worker and reaps orphans; this process waits and exits as the worker did (signal
   included), so the judge sees the worker's status;
6. drops every capability, sets no-new-privileges and execs CMD. File descriptors the caller
   made inheritable (``pass_fds``) reach CMD; the launcher's copies are closed.

    judge -> jail (waits, mirrors the worker's status)
               `-> init, PID 1 (mounts /proc, reaps; killed when the jail dies; its end kills the namespace)
                     `-> worker, CMD (no capabilities)

Exit status 125: the launcher itself failed (the message is on stderr).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 3, 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
LAUNCHER_FAILED = 125

_libc = ctypes.CDLL(None, use_errno=True)


def _fail_if(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def prctl(option: int, arg: int = 0) -> int:
    """prctl(2) with one argument; OSError when refused (AttributeError off Linux)."""
    return _fail_if(_libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)),
                    f"prctl({option})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None):
    enc = [os.fsencode(s) if s is not None else None for s in (source, target, fstype, data)]
    _fail_if(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


class Plan:
    """The parsed command line."""

    def __init__(self, argv: list[str]):
        self.parent, self.pid, self.tmpfs, self.hide, self.bind = 0, False, [], [], []
        i = 0
        while i < len(argv) and argv[i] != "--":
            flag = argv[i]
            if flag == "--pid":
                self.pid, i = True, i + 1
            elif flag == "--parent":
                self.parent, i = int(argv[i + 1]), i + 2
            elif flag in ("--tmpfs", "--hide"):
                getattr(self, flag[2:]).append(argv[i + 1])
                i += 2
            elif flag == "--bind":
                self.bind.append((argv[i + 1], argv[i + 2]))
                i += 3
            else:
                raise ValueError(f"unknown option {flag!r}")
        self.cmd = argv[i + 1:]
        if not self.cmd:
            raise ValueError("no command after '--'")


def _enter_namespaces(pid_ns: bool):
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS | CLONE_NEWNET | (CLONE_NEWPID if pid_ns else 0) | (CLONE_NEWUSER if uid else 0)
    _fail_if(_libc.unshare(flags), "unshare")
    if uid:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    # Nothing mounted from here on may reach the judge's mount namespace.
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def _arrange_folders(plan: Plan):
    covers = []
    # Opened in this mount namespace (a bind source must be one of its mounts) before any cover hides them.
    binds = [(os.open(src, os.O_PATH | os.O_DIRECTORY), dst) for src, dst in plan.bind]
    for path, mode in [(p, "1777") for p in plan.tmpfs] + [(p, "0755") for p in plan.hide]:
        if os.path.isdir(path):  # (one inside an earlier cover is hidden already)
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode}")
            covers.append(path)
    for fd, dst in binds:
        if not (os.path.isdir(dst) and os.path.samestat(os.fstat(fd), os.stat(dst))):  # (else visible as it is)
            os.makedirs(dst, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", dst, None, MS_BIND | MS_REC)
        os.close(fd)
    for path in covers:
        if path in plan.hide:
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _close_fds_except(*keep: int):
    low = 3
    for fd in sorted(keep) + [os.sysconf("SC_OPEN_MAX")]:
        os.closerange(low, fd)
        low = fd + 1


def _drop_privileges():
    for cap in range(64):
        try:
            prctl(PR_CAPBSET_DROP, cap)
        except OSError:  # EINVAL past the kernel's last capability
            break
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header, data = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0), (ctypes.c_uint32 * 6)()
    _fail_if(_libc.capset(header, data), "capset")
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def _give_up(e: Exception, status: int = LAUNCHER_FAILED):
    sys.stderr.write(f"cudal1 jail: {e}\n")
    sys.stderr.flush()
    os._exit(status)


def _exec(cmd: list[str]):
    try:
        _drop_privileges()
    except OSError as e:
        _give_up(e)
    # Python ignores these; a plain exec (unlike subprocess) would pass that on.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        _give_up(f"cannot run {cmd[0]!r}: {e}", 127)


def _init(cmd: list[str], report_fd: int):
    """PID 1 of the new namespace: never returns."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        poll = select.poll()
        poll.register(report_fd, select.POLLOUT)
        if any(ev & select.POLLERR for _, ev in poll.poll(0)):
            os._exit(1)  # the jail died before the line above could take effect
        prctl(PR_SET_DUMPABLE, 0)  # the worker cannot read this process's memory, fds or environment
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError as e:
        _give_up(e)
    worker = os.fork()
    if worker == 0:
        _exec(cmd)
    _close_fds_except(report_fd)
    while True:
        pid, status = os.wait()
        if pid == worker:
            break
    os.write(report_fd, str(status).encode())
    os._exit(0)  # ends every process left in the namespace


def _exit_as(status: int):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status))


def main(argv: list[str]) -> int:
    try:
        plan = Plan(argv)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if plan.parent and os.getppid() != plan.parent:
            return 1  # the judge is gone already
        cwd = os.getcwd()
        _enter_namespaces(plan.pid)
        _arrange_folders(plan)
    except (OSError, ValueError, IndexError) as e:
        _give_up(e)
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir("/")  # the working folder lies inside a hidden one
    if not plan.pid:
        _exec(plan.cmd)
    report_r, report_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(report_r)
        _init(plan.cmd, report_w)
    os.close(report_w)
    _close_fds_except(report_r)
    _, status = os.waitpid(child, 0)
    reported = os.read(report_r, 32)
    _exit_as(int(reported) if reported else status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
