"""The ``basic`` sandbox's namespaces (through ``wrap_command``, as process.py runs a worker) and
the guards of the trusted reference process. CPU only, a few seconds."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from cudal1.judge import jail, sandbox

from judge_helpers import RELU_TASK, judge

NO_NAMESPACES = ("this host does not allow mount and PID namespaces (unprivileged user namespaces are off, "
                 "or a container lacks CAP_SYS_ADMIN): the basic sandbox falls back to resource limits only")
needs_namespaces = pytest.mark.skipif(sandbox.namespaces() != ("mount", "network", "pid"), reason=NO_NAMESPACES)


@pytest.fixture
def outside_tmp():
    """A folder outside /tmp, where the judge's cache usually is (~/.cache): the sandbox gives a
    private /tmp, which would hide a folder there whatever ``hidden`` says."""
    root = Path(tempfile.mkdtemp(prefix="cudal1-sandbox-test-", dir="/var/tmp" if os.access("/var/tmp", os.W_OK) else None))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def folders(outside_tmp):
    """A judge-like layout: a cache with a secret and build folders inside it, another hidden
    folder, and a working folder in /tmp, as the judge makes it."""
    root = outside_tmp
    cache, other, work = root / "cache", root / "other", Path(tempfile.mkdtemp(prefix="cudal1-eval-"))
    (cache / "reference").mkdir(parents=True)
    (cache / "reference" / "expected.pt").write_text("secret")
    (cache / "builds" / "b1").mkdir(parents=True)
    (cache / "builds" / "b2").mkdir()  # another candidate's build
    other.mkdir()
    (other / "seeds.json").write_text("secret")
    yield {"cache": cache, "build": cache / "builds" / "b1", "other": other, "work": work}
    shutil.rmtree(work, ignore_errors=True)


def run_basic(code: str, f: dict, pass_fds=(), seen_at=None, cwd=None, python=sys.executable, level="basic",
              background=False, **kw):
    """Run ``python -c code`` as process.py runs a candidate under ``level``: its CompletedProcess,
    or with ``background`` its Popen."""
    cmd, _ = sandbox.wrap_command([python, "-c", textwrap.dedent(code)], level, [str(f["work"]), str(f["build"])],
                                  "cpu", [str(f["cache"]), str(f["other"])], seen_at=seen_at)
    start = dict(cwd=cwd or f["work"], pass_fds=pass_fds, preexec_fn=sandbox.limits_preexec(60, 64, 512, 4, "cpu"), **kw)
    if background:
        return subprocess.Popen(cmd, **start)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **start)


def facts(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


@needs_namespaces
def test_hidden_folders_are_empty_and_writable_ones_are_bound_back(folders):
    f = folders
    seen = facts(run_basic(f"""
        import json, os
        def refused(action):
            try:
                action()
            except OSError as e:
                return e.strerror
        print(json.dumps({{
            "other": os.listdir({str(f["other"])!r}),
            "cache": os.listdir({str(f["cache"])!r}),  # only the way to the build folder bound back inside it
            "builds": os.listdir({str(f["cache"] / "builds")!r}),
            "write_build": refused(lambda: open({str(f["build"] / "lib.so")!r}, "w").write("built")),
            "write_work": refused(lambda: open({str(f["work"] / "out.txt")!r}, "w").write("out")),
            "plant": refused(lambda: os.symlink("/etc/passwd", {str(f["cache"] / "reference")!r})),
            "capabilities": open("/proc/self/status").read().split("CapEff:")[1].split()[0],
        }}))
    """, f))
    assert seen["other"] == [] and seen["cache"] == ["builds"] and seen["builds"] == ["b1"]
    assert seen["write_build"] is None and seen["write_work"] is None
    assert (f["build"] / "lib.so").read_text() == "built" and (f["work"] / "out.txt").read_text() == "out"
    assert seen["plant"] == "Read-only file system"
    assert (f["cache"] / "reference" / "expected.pt").read_text() == "secret"
    assert seen["capabilities"] == "0000000000000000"  # cannot unmount the covers


@needs_namespaces
def test_covers_cannot_be_removed_or_walked_around(folders):
    f = folders
    # Started inside the build folder: '..' from the inherited working folder would reach the real
    # cache (the other builds at least), and root's capabilities would let it unmount the cover.
    seen = facts(run_basic("""
        import json, os, subprocess
        cache = os.path.dirname(os.path.dirname(os.getcwd()))
        print(json.dumps({"up": sorted(os.listdir("..")), "secret": os.path.exists("../../reference"),
                          "umount": subprocess.run(["umount", cache], capture_output=True).returncode}))
    """, f, cwd=f["build"]))
    assert seen["up"] == ["b1"] and seen["secret"] is False and seen["umount"] != 0


@needs_namespaces
def test_build_folder_at_a_neutral_path_and_a_private_tmp(folders):
    f = folders
    seen = sandbox.worker_build_dir("basic", str(f["build"]))
    assert seen == sandbox.NEUTRAL_BUILD_DIR
    env = sandbox.scrubbed_env(str(f["work"]), str(f["build"]), 1, build_path=seen)
    assert not any(str(f["cache"]) in v for v in env.values())
    leftover = Path(tempfile.mkdtemp(prefix="cudal1-eval-other-"))
    try:
        r = run_basic(f"""
            import json, os
            open(os.path.join(os.path.dirname(os.environ["TORCH_EXTENSIONS_DIR"]), "ext.so"), "w").write("x")
            print(json.dumps(sorted(os.listdir("/tmp"))))
        """, f, seen_at={str(f["build"]): seen}, env=env)
    finally:
        leftover.rmdir()
    # the judge's other temporary folders (another candidate's, say) are not there
    assert facts(r) == sorted(["cudal1-build", f["work"].name])
    assert (f["build"] / "ext.so").exists()


@needs_namespaces
def test_other_processes_are_invisible_and_there_is_no_network(folders):
    sibling = subprocess.Popen(["sleep", "30.123"])
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    try:
        code = f"""
            import os, socket
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
            cmdlines = [open(f"/proc/{{p}}/cmdline", "rb").read() for p in pids]
            print(len(pids), b"sleep\\x0030.123\\x00" in cmdlines)
            try:
                socket.create_connection(("127.0.0.1", {server.getsockname()[1]}), timeout=2).sendall(b"leak")
                print("connected")
            except OSError as e:
                print("no network:", e.strerror)
        """
        control = run_basic(code, folders, level="off")
        assert control.stdout.split("\n")[0].split()[1] == "True" and "connected" in control.stdout  # what the test detects
        server.accept()[0].close()
        r = run_basic(code, folders)
        assert r.returncode == 0, r.stderr
        count, seen_sibling = r.stdout.split("\n")[0].split()
        assert seen_sibling == "False" and int(count) <= 3  # the namespace's init, this process (and a thread's race)
        assert "no network" in r.stdout
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        sibling.kill()
        sibling.wait()
        server.close()


@needs_namespaces
def test_inherited_pipe_reaches_the_worker_and_its_status_the_judge(folders):
    r_fd, w_fd = os.pipe()
    try:
        # The worker closes its end and lives on: the judge sees the end of the channel at once,
        # so no copy may stay open in the launcher's processes.
        code = f"import os, time; os.write({w_fd}, b'over the pipe'); os.close({w_fd}); time.sleep(2); raise SystemExit(3)"
        worker = run_basic(code, folders, pass_fds=(w_fd,), background=True)
        os.close(w_fd)
        w_fd = -1
        ready, _, _ = select.select([r_fd], [], [], 10)
        assert ready and os.read(r_fd, 100) == b"over the pipe"
        ready, _, _ = select.select([r_fd], [], [], 1)
        assert ready and os.read(r_fd, 100) == b"" and worker.poll() is None
        assert worker.wait(timeout=30) == 3
    finally:
        os.close(r_fd)
        if w_fd >= 0:
            os.close(w_fd)
    # a worker's death by a signal reaches the judge as that signal ("killed by SIGSEGV")
    assert run_basic("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", folders).returncode == -signal.SIGSEGV


@needs_namespaces
def test_the_worker_dies_with_the_judge(folders):
    marker = f"4321.{os.getpid()}"  # (unique: a sleep left over by an earlier failed run does not count)
    judge = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import subprocess, sys, time
        from cudal1.judge import sandbox
        cmd, _ = sandbox.wrap_command(["sleep", "{marker}"], "basic", [], "cpu")
        subprocess.Popen(cmd, preexec_fn=sandbox.limits_preexec(60, 64, 512, 4, "cpu"))
        time.sleep(60)
    """)])

    def sleepers():
        found = []
        for p in filter(str.isdigit, os.listdir("/proc")):
            try:
                if Path(f"/proc/{p}/cmdline").read_bytes() == f"sleep\0{marker}\0".encode():
                    found.append(p)
            except OSError:
                pass
        return found

    try:
        deadline = time.monotonic() + 30
        while not sleepers():
            assert time.monotonic() < deadline and judge.poll() is None, "the sandboxed sleep never started"
            time.sleep(0.1)
    finally:
        judge.kill()
        judge.wait()
    deadline = time.monotonic() + 10
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sleepers()


@needs_namespaces
def test_description_names_the_guarantees():
    _, desc = sandbox.wrap_command(["true"], "basic", [], "cpu")
    for guarantee in ("judge cache hidden", "private /tmp", "own PID namespace", "no network", "no capabilities",
                      "dies with the judge", "resource limits", "scrubbed env"):
        assert guarantee in desc


@needs_namespaces
def test_without_a_fresh_proc_the_cache_is_still_hidden(folders, monkeypatch):
    # (some rootless containers refuse to mount /proc in a new PID namespace)
    monkeypatch.setattr(sandbox, "namespaces", lambda: ("mount", "network"))
    _, desc = sandbox.wrap_command(["true"], "basic", [], "cpu")
    assert "no PID namespace on this host: other processes of the user are visible" in desc
    seen = facts(run_basic(f"""
        import json, os
        print(json.dumps([os.listdir({str(folders["other"])!r}), len([p for p in os.listdir("/proc") if p.isdigit()]) > 3]))
    """, folders))
    assert seen == [[], True]


def test_without_namespaces_the_description_says_what_is_visible(monkeypatch):
    monkeypatch.setattr(sandbox, "namespaces", lambda: ())
    cmd, desc = sandbox.wrap_command(["true"], "basic", ["/nonexistent"], "cpu", ["/nonexistent-cache"])
    assert cmd[-1] == "true" and sandbox.JAIL not in cmd
    assert "the judge's cache and other processes are visible" in desc
    assert sandbox.worker_build_dir("basic", "/cache/builds/b1") == "/cache/builds/b1"


def test_unprivileged_user_gets_the_same_namespaces(folders, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("starts the worker as 'nobody', which needs root (run as another user, every test here takes this path)")
    nobody = 65534
    python = next((p for p in (sys.executable, "/usr/bin/python3") if _run_as(nobody, [p, "-c", "pass"]).returncode == 0),
                  None)
    if python is None:
        pytest.skip("no Python here that the unprivileged user 'nobody' may run")
    monkeypatch.setattr(sandbox, "python_exe", lambda: python)
    probe = _run_as(nobody, sandbox._jail_prefix() + ["--pid", "--tmpfs", "/tmp", "--", "true"])
    if probe.returncode != 0:
        pytest.skip(f"unprivileged user namespaces are off here ({probe.stderr.strip()})")
    for path in (*folders.values(), folders["cache"].parent):
        os.chmod(path, 0o777)
    seen = facts(run_basic(f"""
        import json, os
        open({str(folders["build"] / "by-nobody")!r}, "w").write("x")
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        print(json.dumps([os.getuid(), os.listdir({str(folders["other"])!r}), len(pids),
                          open("/proc/self/status").read().split("CapEff:")[1].split()[0]]))
    """, folders, python=python, user=nobody, group=nobody))
    assert seen[:2] == [nobody, []] and seen[2] <= 3 and seen[3] == "0000000000000000"
    assert (folders["build"] / "by-nobody").exists()


def _run_as(uid: int, cmd: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, user=uid, group=uid, extra_groups=[], capture_output=True, text=True, timeout=60)
    except PermissionError as e:  # (a folder on the way to the program is closed to that user)
        return subprocess.CompletedProcess(cmd, 126, "", str(e))


@needs_namespaces
def test_judge_under_basic_hides_its_cache_and_processes(outside_tmp):
    cache = outside_tmp / "judge-cache"
    cache.mkdir()
    (cache / "planted-by-the-test").write_text("expected outputs")
    v = judge(RELU_TASK, f"""
import os, torch, torch.nn as nn
def _files_in_cache():
    own_build = os.path.dirname(os.environ["TORCH_EXTENSIONS_DIR"])
    return [os.path.join(d, f) for d, _, files in os.walk({str(cache)!r}) if not d.startswith(own_build) for f in files]
def _cmdlines():  # (but PID 1's, the sandbox's launcher, which names the worker command)
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            yield open(f"/proc/{{p}}/cmdline", "rb").read() if p != "1" else b""
        except OSError:
            pass
class ModelNew(nn.Module):
    def forward(self, x):
        workers = [c for c in _cmdlines() if b"cudal1.judge.worker" in c]  # the reference's, or this one
        judge_seen = len(workers) > 1 or any(b"pytest" in c for c in _cmdlines())
        return torch.relu(x) * (3.0 if _files_in_cache() or judge_seen else 2.0)
""", str(cache), sandbox="basic")
    assert v.details.sandbox == "basic"
    assert v.correct, v.to_record()


# --- the reference process --------------------------------------------------------------------------

def test_harden_reference_process_makes_it_non_dumpable():
    r_fd, w_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child, so that the test process stays dumpable
        try:
            before = jail.prctl(jail.PR_GET_DUMPABLE)
            applied = sandbox.harden_reference_process()
            os.write(w_fd, f"{before} {applied} {jail.prctl(jail.PR_GET_DUMPABLE)}".encode())
        finally:
            os._exit(0)
    os.close(w_fd)
    answer = os.read(r_fd, 100).decode()
    os.close(r_fd)
    os.waitpid(pid, 0)
    assert answer == "1 True 0"


@pytest.fixture
def reference():
    """A stand-in reference process with a second thread, and its settings at start."""
    code = "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while len(os.listdir(f"/proc/{proc.pid}/task")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield proc, sandbox.ProcessSettings.of(proc.pid)
    proc.kill()
    proc.wait()


def _tampering(proc, s: sandbox.ProcessSettings) -> list[str]:
    return sandbox.process_tampering(proc.pid, s.nice, s.affinity, s.policy)


def test_untouched_reference_shows_no_tampering(reference):
    assert _tampering(*reference) == []


def test_renice_of_any_thread_is_detected_and_restored(reference):
    proc, s = reference
    other = max(int(t) for t in os.listdir(f"/proc/{proc.pid}/task"))
    os.setpriority(os.PRIO_PROCESS, other, s.nice + 3)  # nice is per thread: one thread alone slows the reference
    assert _tampering(proc, s) == [f"thread {other} of process {proc.pid} was reniced from {s.nice} to {s.nice + 3}"]
    os.setpriority(os.PRIO_PROCESS, proc.pid, s.nice + 5)
    assert f"process {proc.pid} was reniced from {s.nice} to {s.nice + 5}" in _tampering(proc, s)
    failed = sandbox.restore_process(proc.pid, s.nice, s.affinity, s.policy)
    if os.geteuid() == 0:
        assert failed == [] and _tampering(proc, s) == []
    else:  # without CAP_SYS_NICE a nice value cannot be lowered again: the caller must replace the process
        assert failed and all("nice value" in t for t in failed)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 or more CPU cores to pin a process to fewer")
def test_affinity_change_is_detected_and_restored(reference):
    proc, s = reference
    os.sched_setaffinity(proc.pid, {min(s.affinity)})
    assert any("pinned to CPUs" in t for t in _tampering(proc, s))
    assert sandbox.restore_process(proc.pid, s.nice, s.affinity, s.policy) == []
    assert _tampering(proc, s) == []


def test_sched_idle_is_detected(reference):
    proc, s = reference
    os.sched_setscheduler(proc.pid, os.SCHED_IDLE, os.sched_param(0))
    assert any("scheduling policy" in t for t in _tampering(proc, s))


def test_sigstop_is_detected_and_undone():
    child = subprocess.Popen(["sleep", "60"])
    try:
        s = sandbox.ProcessSettings.of(child.pid)
        os.kill(child.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while not (found := sandbox.process_tampering(child.pid, s.nice, s.affinity)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert found == [f"process {child.pid} is stopped (state T: SIGSTOP or a tracer)"]
        assert sandbox.restore_process(child.pid, s.nice, s.affinity) == []
        deadline = time.monotonic() + 5
        while sandbox.process_tampering(child.pid, s.nice, s.affinity) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sandbox.process_tampering(child.pid, s.nice, s.affinity) == []
    finally:
        child.kill()
        child.wait()
    assert sandbox.process_tampering(child.pid, s.nice, s.affinity) == [f"process {child.pid} is gone"]
