"""Detectors for reaching outside the computation: processes, threads, files, network,
environment, timers, interpreter internals and global backend state."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from .context import ScanContext, detector, imported_modules, matches, short

Hit = Iterator[tuple[int, str]]

TIMERS = (
    "time.perf_counter", "time.perf_counter_ns", "time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns",
    "time.process_time", "time.process_time_ns", "time.thread_time", "timeit.*",
    "torch.cuda.synchronize", "torch.cuda.Event.*", "torch.cuda.streams.*", "torch.cuda.Stream.*",
    "torch.cuda.current_stream", "torch.cuda.default_stream", "torch.cuda.stream", "torch.cuda.set_stream",
    "torch.cuda.Event", "torch.cuda.Stream", "torch.cuda.elapsed_time", "torch.accelerator.synchronize",
    "torch.Event.*", "torch.Stream.*", "torch.cuda.cudart", "torch.utils.benchmark.*", "torch.cuda._utils.*",
    "torch.profiler.*", "torch.autograd.profiler.*", "torch._C._cuda_synchronize",
)
CONFIG_PREFIXES = ("torch.backends.*", "torch._dynamo.config.*", "torch._inductor.config.*",
                   "torch._functorch.config.*")
PATCH_ELSEWHERE = ("os.environ", "sys.modules", "sys.meta_path", "sys.path_hooks", "sys.path_importer_cache",
                   "sys.excepthook", "threading.excepthook", "sys.unraisablehook", "sys.displayhook")


def _const_str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _obj_name(ctx: ScanContext, node: ast.AST) -> str | None:
    if isinstance(node, ast.Name) and node.id == "__builtins__":
        return "builtins"
    if isinstance(node, ast.Attribute) and node.attr == "__dict__":
        return _obj_name(ctx, node.value)
    return ctx.qualname(node, imported_only=True)


def patch_targets(ctx: ScanContext) -> list[tuple[int, str, ast.AST | None]]:
    """(line, dotted name, assigned value or None) for every write to a library attribute."""
    if "patch_targets" not in ctx.memo:
        ctx.memo["patch_targets"] = list(_patch_targets(ctx))
    return ctx.memo["patch_targets"]


def _patch_targets(ctx: ScanContext) -> Iterator[tuple[int, str, ast.AST | None]]:
    for node in ctx.nodes:
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for t in targets:
            for el in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]):
                if isinstance(el, ast.Attribute):
                    base = _obj_name(ctx, el.value)
                    if base:
                        yield node.lineno, f"{base}.{el.attr}", value
                elif isinstance(el, ast.Subscript) and _const_str(el.slice):
                    if isinstance(el.value, ast.Name) and el.value.id == "__builtins__" or (
                            isinstance(el.value, ast.Attribute) and el.value.attr == "__dict__"):
                        base = _obj_name(ctx, el.value)
                        if base:
                            yield node.lineno, f"{base}.{_const_str(el.slice)}", value
        if isinstance(node, ast.Call):
            q = ctx.qualname(node.func)
            if q in ("setattr", "delattr", "builtins.setattr", "builtins.delattr") and len(node.args) >= 2:
                base = _obj_name(ctx, node.args[0])
                if base:
                    yield node.lineno, f"{base}.{_const_str(node.args[1]) or '<dynamic>'}", (
                        node.args[2] if len(node.args) > 2 else None)
            elif q and q.split(".")[-1] == "patch" and "mock" in q and node.args and _const_str(node.args[0]):
                yield node.lineno, _const_str(node.args[0]), None
            elif q and q.endswith("mock.patch.object") and len(node.args) >= 2 and _const_str(node.args[1]):
                base = _obj_name(ctx, node.args[0])
                if base:
                    yield node.lineno, f"{base}.{_const_str(node.args[1])}", None


def _is_timer(target: str) -> bool:
    return matches(target, TIMERS) or any(t.startswith(target + ".") for t in TIMERS)


@detector
def timer_patching(tree, source, ctx: ScanContext) -> Hit:
    for line, target, _ in patch_targets(ctx):
        if _is_timer(target):
            yield line, f"replaces {target}, which the judge's timer relies on"


@detector
def builtins_patching(tree, source, ctx: ScanContext) -> Hit:
    for line, target, _ in patch_targets(ctx):
        if target.startswith("builtins."):
            yield line, f"replaces the builtin {target[9:]}"


@detector
def module_patched(tree, source, ctx: ScanContext) -> Hit:
    for line, target, _ in patch_targets(ctx):
        if not (_is_timer(target) or target.startswith("builtins.") or matches(target, CONFIG_PREFIXES)
                or matches(target, PATCH_ELSEWHERE)):
            yield line, f"monkey-patches {target}"


_TF32_WORDS = ("tf32", "reduced_precision", "fp32_precision")


def _enables_tf32(target: str, value: ast.AST | None) -> bool:
    if not any(w in target.rsplit(".", 1)[-1] for w in _TF32_WORDS):
        return False
    if isinstance(value, ast.Constant):
        return value.value not in (False, "ieee", "highest", None, 0)
    return True


_STATE_CALLS = (
    "torch.set_num_threads", "torch.set_num_interop_threads", "torch.set_default_dtype", "torch.set_default_device",
    "torch.set_default_tensor_type", "torch.use_deterministic_algorithms", "torch.set_deterministic_debug_mode",
    "torch.set_flush_denormal", "torch.cuda.set_device", "torch.cuda.set_per_process_memory_fraction",
    "torch.set_grad_enabled", "torch.autograd.set_grad_enabled", "os.sched_setaffinity", "torch.cuda.set_sync_debug_mode",
)


def _in_with_or_decorator(ctx: ScanContext, call: ast.Call) -> bool:
    p = ctx.parents.get(call)
    return isinstance(p, ast.withitem) or (isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)) and call in p.decorator_list)


@detector
def global_state(tree, source, ctx: ScanContext) -> Hit:
    for line, target, value in patch_targets(ctx):
        if matches(target, CONFIG_PREFIXES) and not _enables_tf32(target, value):
            yield line, f"sets {target}, process-wide backend state"
    for call, q in ctx.calls():
        if q == "torch.set_float32_matmul_precision":
            if call.args and _const_str(call.args[0]) == "highest":
                yield call.lineno, f"{short(call)} changes process-wide matmul precision"
        elif (matches(q, _STATE_CALLS) or (q or "").startswith("torch._C._set_")) and not _in_with_or_decorator(ctx, call):
            yield call.lineno, f"{short(call)} changes process-wide state"


@detector
def tf32_enabled(tree, source, ctx: ScanContext) -> Hit:
    for line, target, value in patch_targets(ctx):
        if matches(target, CONFIG_PREFIXES) and _enables_tf32(target, value):
            yield line, f"sets {target}: float32 matmuls/convolutions run in TF32"
    for call, q in ctx.calls():
        if q == "torch.set_float32_matmul_precision" and (not call.args or _const_str(call.args[0]) != "highest"):
            yield call.lineno, f"{short(call)} lets float32 matmuls run in TF32/bf16"


# --- processes and threads -----------------------------------------------------------------
_THREADS = ("threading.Thread", "threading.Timer", "_thread.start_new_thread", "_thread.start_new",
            "concurrent.futures.ThreadPoolExecutor", "concurrent.futures.thread.ThreadPoolExecutor",
            "multiprocessing.pool.ThreadPool", "multiprocessing.dummy.*", "asyncio.to_thread")
_NATIVE_THREADS = re.compile(r"\bstd::(?:thread|jthread|async)\b|\bpthread_create\s*\(")
_PROCESSES = (
    "subprocess.*", "os.fork", "os.forkpty", "os.system", "os.popen", "os.posix_spawn", "os.posix_spawnp",
    "os.spawnl", "os.spawnle", "os.spawnlp", "os.spawnlpe", "os.spawnv", "os.spawnve", "os.spawnvp", "os.spawnvpe",
    "os.execl", "os.execle", "os.execlp", "os.execlpe", "os.execv", "os.execve", "os.execvp", "os.execvpe",
    "pty.spawn", "pty.fork", "concurrent.futures.ProcessPoolExecutor", "asyncio.create_subprocess_exec",
    "asyncio.create_subprocess_shell", "multiprocessing.*", "torch.multiprocessing.*",
)
_HARMLESS_MP = ("multiprocessing.cpu_count", "torch.multiprocessing.cpu_count", "multiprocessing.current_process")
_NATIVE_PROCESSES = re.compile(r"(?<![\w.>])(?:std::)?(?:system|popen|fork|vfork|execv|execvp|execve|execl|execlp|posix_spawn)\s*\(")


@detector
def threads(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        if isinstance(node, ast.Call) and matches(ctx.qualname(node.func), _THREADS):
            yield node.lineno, f"{short(node)} starts a thread"
        elif isinstance(node, ast.ClassDef) and any(ctx.qualname(b) == "threading.Thread" for b in node.bases):
            yield node.lineno, f"class {node.name} subclasses threading.Thread"
    for line, m in ctx.native_matches(_NATIVE_THREADS):
        yield line, f"native code starts a thread ({m.group(0).strip()})"


@detector
def child_process(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        if isinstance(node, ast.Call):
            q = ctx.qualname(node.func)
            if matches(q, _PROCESSES) and not matches(q, _HARMLESS_MP):
                yield node.lineno, f"{short(node)} starts or controls another process"
        elif isinstance(node, ast.ClassDef) and any(
                matches(ctx.qualname(b), ("multiprocessing.Process", "torch.multiprocessing.Process")) for b in node.bases):
            yield node.lineno, f"class {node.name} subclasses multiprocessing.Process"
    for line, m in ctx.native_matches(_NATIVE_PROCESSES):
        yield line, f"native code starts a process ({m.group(0).strip()})"


# --- files, network, environment -----------------------------------------------------------
_FILE_CALLS = (
    "open", "builtins.open", "io.open", "io.FileIO", "os.open", "os.remove", "os.unlink", "os.rmdir", "os.removedirs",
    "os.rename", "os.renames", "os.replace", "os.mkdir", "os.makedirs", "os.listdir", "os.scandir", "os.walk",
    "os.chmod", "os.chown", "os.link", "os.symlink", "os.truncate", "os.chdir", "os.mkfifo", "shutil.*", "glob.*",
    "torch.save", "torch.load", "numpy.save", "numpy.savez", "numpy.load", "numpy.fromfile", "numpy.memmap",
    "numpy.loadtxt", "numpy.savetxt", "pickle.dump", "pickle.load", "fileinput.*", "linecache.*",
)
_PATH_ONLY_METHODS = ("write_text", "write_bytes", "read_text", "read_bytes", "symlink_to", "hardlink_to", "iterdir")
_PATH_METHODS = ("open", "unlink", "touch", "mkdir", "rename", "replace", "rmdir", "glob", "rglob", "chmod")
_NATIVE_FILES = re.compile(r"(?<![\w.>])(?:fopen|freopen|fdopen|unlink|creat|mkstemp)\s*\(|\b(?:std::)?[io]?fstream\b")


def _pathish(ctx: ScanContext, node: ast.AST) -> bool:
    """``node`` is built from a pathlib call (``Path.home() / "x"``, ``p = Path(...)``)."""
    todo, seen = [node], set()  # iterative, and ``s = s.replace(...)`` must not loop forever
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Call):
            if matches(ctx.qualname(node.func), ("pathlib.*",)):
                return True
            todo.append(node.func)
        elif isinstance(node, ast.BinOp):
            todo.append(node.left)
        elif isinstance(node, ast.Attribute):
            todo.append(node.value)
        elif isinstance(node, ast.Name) and node.id not in seen:
            seen.add(node.id)
            todo.extend(v for v in ctx.assignments.get(node.id, []) if not isinstance(v, ast.Name))
    return False


@detector
def file_access(tree, source, ctx: ScanContext) -> Hit:
    for call, q in ctx.calls():
        if q in ("open", "builtins.open") and not ctx.is_builtin(call.func, "open"):
            continue
        if matches(q, _FILE_CALLS):
            yield call.lineno, f"{short(call)} touches the file system"
        elif isinstance(call.func, ast.Attribute) and (call.func.attr in _PATH_ONLY_METHODS or (
                call.func.attr in _PATH_METHODS and _pathish(ctx, call.func.value))):
            yield call.lineno, f"{short(call)} touches the file system"
    for line, m in ctx.native_matches(_NATIVE_FILES):
        yield line, f"native code touches the file system ({m.group(0).strip()})"


_NET_MODULES = ("socket", "ssl", "urllib", "urllib3", "requests", "httpx", "http", "aiohttp", "ftplib", "smtplib",
                "poplib", "imaplib", "telnetlib", "xmlrpc", "websocket", "websockets", "paramiko", "grpc", "zmq",
                "huggingface_hub", "socketserver")
_NET_CALLS = ("torch.hub.*", "torch.distributed.init_process_group", "torch.distributed.rpc.*",
              "asyncio.open_connection", "asyncio.start_server", "torch.utils.model_zoo.*")
_NATIVE_NET = re.compile(r"\b(?:socket|connect|getaddrinfo|gethostbyname)\s*\(")


@detector
def network_access(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        for m in imported_modules(node):
            if m.split(".")[0] in _NET_MODULES:
                yield node.lineno, f"imports {m}, a network module"
        if isinstance(node, ast.Call) and matches(ctx.qualname(node.func), _NET_CALLS):
            yield node.lineno, f"{short(node)} opens network connections"
    for line, m in ctx.native_matches(_NATIVE_NET):
        yield line, f"native code uses the network ({m.group(0).strip()})"


_ENV_WRITE_METHODS = ("update", "pop", "setdefault", "clear", "popitem", "__setitem__", "__delitem__")
# Build settings that extension code commonly checks before load_inline; reading one of these
# by name is not a leak. Iterating or copying the whole environment always is.
BUILD_VARS = ("TORCH_CUDA_ARCH_LIST", "CUDA_HOME", "CUDA_PATH", "MAX_JOBS", "TORCH_EXTENSIONS_DIR", "CXX", "CC",
              "NVCC_FLAGS", "TORCH_NVCC_FLAGS")


def _env_key(ctx: ScanContext, node: ast.AST) -> str | None:
    """The constant variable name a read of ``os.environ`` (``node``) asks for, if any."""
    p = ctx.parents.get(node)
    if isinstance(p, ast.Subscript):
        return _const_str(p.slice)
    if isinstance(p, ast.Attribute) and p.attr == "get":
        call = ctx.parents.get(p)
        if isinstance(call, ast.Call) and call.args:
            return _const_str(call.args[0])
    if isinstance(p, ast.Compare) and node in p.comparators and isinstance(p.ops[0], (ast.In, ast.NotIn)):
        return _const_str(p.left)
    return None


def _env_uses(ctx: ScanContext) -> Iterator[tuple[int, str, str]]:
    """(line, 'read'|'write', text) for every use of the process environment."""
    for node in ctx.nodes:
        if isinstance(node, (ast.Name, ast.Attribute)) and ctx.qualname(node) in ("os.environ", "os.environb", "posix.environ"):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                continue
            p = ctx.parents.get(node)
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                yield node.lineno, "write", short(node)
            elif isinstance(p, ast.Subscript) and isinstance(p.ctx, (ast.Store, ast.Del)):
                yield node.lineno, "write", short(p)
            elif isinstance(p, ast.Attribute) and p.attr in _ENV_WRITE_METHODS:
                yield node.lineno, "write", short(ctx.parents.get(p, p))
            elif _env_key(ctx, node) not in BUILD_VARS:
                yield node.lineno, "read", short(p if isinstance(p, (ast.Subscript, ast.Attribute, ast.Call)) else node)
        elif isinstance(node, ast.Call):
            q = ctx.qualname(node.func)
            if q in ("os.getenv", "os.getenvb"):
                if not (node.args and _const_str(node.args[0]) in BUILD_VARS):
                    yield node.lineno, "read", short(node)
            elif q in ("os.putenv", "os.unsetenv"):
                yield node.lineno, "write", short(node)
    for line, m in ctx.native_matches(re.compile(r"(?<![\w.])(?:std::)?(?:secure_)?getenv\s*\(")):
        yield line, "read", f"native {m.group(0).strip()}"
    for line, m in ctx.native_matches(re.compile(r"(?<![\w.])(?:std::)?(?:setenv|putenv|unsetenv)\s*\(")):
        yield line, "write", f"native {m.group(0).strip()}"


@detector
def env_read(tree, source, ctx: ScanContext) -> Hit:
    for line, kind, text in _env_uses(ctx):
        if kind == "read":
            yield line, f"{text} reads the process environment"


@detector
def env_write(tree, source, ctx: ScanContext) -> Hit:
    for line, kind, text in _env_uses(ctx):
        if kind == "write":
            yield line, f"{text} changes the process environment"


# --- interpreter internals -----------------------------------------------------------------
@detector
def gc_introspection(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        q = ctx.qualname(node) if isinstance(node, ast.Attribute) else None
        if q in ("gc.get_objects", "gc.get_referrers", "gc.get_referents", "gc.callbacks", "gc.garbage"):
            yield node.lineno, f"{q} walks or hooks the garbage collector's objects"


_FRAME_CALLS = ("inspect.currentframe", "inspect.stack", "inspect.trace", "inspect.getouterframes",
                "inspect.getinnerframes", "inspect.getframeinfo", "inspect.getsource", "inspect.getsourcelines",
                "inspect.getsourcefile", "inspect.getfile", "inspect.getmodule", "inspect.getmembers",
                "sys._getframe", "sys._current_frames", "sys.settrace", "sys.setprofile", "threading.settrace",
                "threading.setprofile", "traceback.extract_stack", "traceback.walk_stack", "traceback.format_stack",
                "traceback.print_stack")
_FRAME_ATTRS = ("f_back", "f_locals", "f_globals", "f_builtins", "tb_frame", "gi_frame", "cr_frame")


@detector
def frame_introspection(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        if isinstance(node, ast.Call) and matches(ctx.qualname(node.func), _FRAME_CALLS):
            yield node.lineno, f"{short(node)} inspects the interpreter's frames or sources"
        elif isinstance(node, ast.Attribute) and node.attr in _FRAME_ATTRS:
            yield node.lineno, f"{short(node)} reads another frame"


@detector
def sys_modules(tree, source, ctx: ScanContext) -> Hit:
    names = ("sys.modules", "sys.meta_path", "sys.path_hooks", "sys.path_importer_cache")
    for node in ctx.nodes:
        if isinstance(node, (ast.Attribute, ast.Name)) and ctx.qualname(node, imported_only=True) in names:
            yield node.lineno, f"{short(node)} reaches into the import system"
        elif isinstance(node, ast.Call) and ctx.qualname(node.func) in ("importlib.reload", "imp.reload"):
            yield node.lineno, f"{short(node)} reloads a module"


@detector
def ctypes_ffi(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        for m in imported_modules(node):
            if m.split(".")[0] in ("ctypes", "_ctypes", "cffi"):
                yield node.lineno, f"imports {m}, raw access to memory and native libraries"
        if isinstance(node, ast.Call) and ctx.qualname(node.func) in ("torch.ops.load_library", "torch.classes.load_library"):
            yield node.lineno, f"{short(node)} loads a prebuilt native library"


_SLEEPS = ("time.sleep", "torch.cuda._sleep", "asyncio.sleep", "signal.pause", "os.sched_yield")
_NATIVE_SLEEP = re.compile(r"\b(?:__nanosleep|clock64|clock|usleep|nanosleep|sleep_for|sleep_until)\s*\(|%globaltimer")


def _loops_forever(loop: ast.While) -> bool:
    if not (isinstance(loop.test, ast.Constant) and loop.test.value):
        return False
    todo = list(loop.body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.Break, ast.Return, ast.Raise)):
            return False
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(n, (ast.For, ast.While, ast.AsyncFor)):
            todo.extend(c for c in ast.walk(n) if isinstance(c, (ast.Return, ast.Raise)))
            continue
        todo.extend(ast.iter_child_nodes(n))
    return True


@detector
def sleep_or_spin(tree, source, ctx: ScanContext) -> Hit:
    for node in ctx.nodes:
        if isinstance(node, ast.Call) and matches(ctx.qualname(node.func), _SLEEPS):
            yield node.lineno, f"{short(node)} sleeps"
        elif isinstance(node, ast.While) and _loops_forever(node):
            yield node.lineno, f"`while {short(node.test)}:` loops forever (no break, return or raise)"
    for line, m in ctx.native_matches(_NATIVE_SLEEP):
        yield line, f"native code sleeps or reads a clock ({m.group(0).strip()})"


_HOOKS = ("atexit.register", "signal.signal", "signal.alarm", "signal.setitimer", "os.register_at_fork",
          "sys.addaudithook", "faulthandler.register", "faulthandler.dump_traceback_later")


@detector
def exit_hooks(tree, source, ctx: ScanContext) -> Hit:
    for call, q in ctx.calls():
        if matches(q, _HOOKS):
            yield call.lineno, f"{short(call)} installs a process hook"
    for line, target, _ in patch_targets(ctx):
        if target in ("sys.excepthook", "threading.excepthook", "sys.unraisablehook", "sys.displayhook"):
            yield line, f"replaces {target}"


@detector
def process_exit(tree, source, ctx: ScanContext) -> Hit:
    exits = ("sys.exit", "os._exit", "os.abort", "os.kill", "os.killpg", "signal.raise_signal", "signal.pthread_kill")
    for node in ctx.nodes:
        if isinstance(node, ast.Call) and (matches(ctx.qualname(node.func), exits)
                                           or ctx.is_builtin(node.func, "exit") or ctx.is_builtin(node.func, "quit")):
            yield node.lineno, f"{short(node)} ends or signals a process"
        elif isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if ctx.is_builtin(exc, "SystemExit") or ctx.is_builtin(exc, "KeyboardInterrupt"):
                yield node.lineno, f"raise {short(node.exc)} ends the process"
