"""The judge's child process: runs either the reference or one candidate, never both.

Started as ``python -m cudal1.judge.worker ROLE FD_IN FD_OUT``. Commands arrive as JSON lines on
FD_IN and replies leave on FD_OUT (stdout/stderr are free for the program's own output and go
to log files). Outputs are written as ``.pt`` files into the working folder; the parent, not
this process, compares them, so a candidate process never holds expected outputs.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
import threading
import time
import traceback
import types

import torch

from . import guard
from .cudart import persisting_l2_limit, reset_persisting_l2

# Captured before anything else can run in this process.
_perf = time.perf_counter
_TIMERS = guard.capture(guard.TIMING_NAMES)
_INPUT_FNS = guard.capture(guard.INPUT_NAMES)

POISON_BYTE = 0xFF  # float32/float16/bfloat16 with all bits set are NaN


class CandidateExit(Exception):
    pass


def leaves(obj) -> list:
    """Flatten a forward's output (tensor, tuple/list/dict of them, or scalars) into a list."""
    if isinstance(obj, (list, tuple)):
        return [x for o in obj for x in leaves(o)]
    if isinstance(obj, dict):
        return [x for k in sorted(obj, key=str) for x in leaves(obj[k])]
    return [obj]


def _snapshot_inputs(inputs):
    return [x.detach().clone() if isinstance(x, torch.Tensor) else x for x in inputs]


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point() or a.is_complex():
            return bool(torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0))) and bool(
                torch.equal(torch.isnan(a), torch.isnan(b)))
        return bool(torch.equal(a, b))
    return a == b


def _same_layout(a: list, b: list) -> bool:
    """Same count, and tensors of the same shape, strides, dtype and device at each position."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, torch.Tensor) != isinstance(y, torch.Tensor):
            return False
        if isinstance(x, torch.Tensor) and (x.shape != y.shape or x.stride() != y.stride()
                                            or x.dtype != y.dtype or x.device != y.device):
            return False
    return True


def fingerprint(inputs) -> list:
    fp = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            xd = x.detach()
            s = xd.double() if (xd.is_floating_point() or not xd.is_complex()) else xd.abs().double()
            fp.append({"shape": list(x.shape), "dtype": str(x.dtype),
                       "sum": float(torch.nan_to_num(s).sum()), "abs": float(torch.nan_to_num(s).abs().sum())})
        else:
            fp.append({"value": repr(x)})
    return fp


def transform_inputs(inputs, kind: str | None, seed: int):
    """Other value distributions of the same shapes and dtypes (the robustness probe)."""
    if not kind:
        return inputs
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            if kind == "negate":
                x = -x
            elif kind == "scale":
                x = x * 8.0 - 2.0
            elif kind == "normal":
                x = (torch.randn(x.shape, generator=g, dtype=torch.float32) * 3.0).to(dtype=x.dtype, device=x.device)
            elif kind == "shift":
                x = x + 5.0
        out.append(x)
    return out


class Worker:
    def __init__(self, role: str):
        self.role = role
        self.model = None
        self.device = "cpu"
        self.findings: list[dict] = []
        self.l2_buffer = None

    # --- helpers -----------------------------------------------------------------------------
    def finding(self, id_: str, severity: str, message: str):
        if not any(f["id"] == id_ and f["message"] == message for f in self.findings):
            self.findings.append({"id": id_, "severity": severity, "message": message})

    def sync(self):
        if self.device.startswith("cuda"):
            _TIMERS["torch.cuda.synchronize"]()

    def make_inputs(self, seed: int, probe: str | None = None):
        _INPUT_FNS["torch.manual_seed"](seed)
        with torch.device(self.device):
            inputs = self.get_inputs()
        inputs = [x.to(self.device) if isinstance(x, torch.Tensor) else x for x in inputs]
        return transform_inputs(inputs, probe, seed)

    def poison(self, nbytes: int):
        """Fill memory the caching allocator will hand out next, so unwritten outputs show as NaN."""
        if not self.device.startswith("cuda"):
            return
        # Return every cached block first: otherwise a freed block that still holds real data
        # (an input's old copy, say) could be handed out instead of a poisoned one.
        torch.cuda.empty_cache()
        blocks = [torch.empty(max(nbytes, 1 << 20), dtype=torch.uint8, device=self.device).fill_(POISON_BYTE)]
        blocks += [torch.empty(1 << 18, dtype=torch.uint8, device=self.device).fill_(POISON_BYTE) for _ in range(16)]
        del blocks

    def flush_l2(self):
        if not self.device.startswith("cuda"):
            return
        if self.l2_buffer is None:
            l2 = getattr(torch.cuda.get_device_properties(self.device), "L2_cache_size", 50 << 20) or (50 << 20)
            self.l2_buffer = torch.empty(max(2 * l2, 128 << 20), dtype=torch.uint8, device=self.device)
        self.l2_buffer.zero_()

    def call(self, inputs, fwd_seed: int):
        _INPUT_FNS["torch.manual_seed"](fwd_seed)
        with torch.no_grad():
            return self.model(*inputs)

    def save(self, obj, name: str) -> str:
        path = os.path.join(self.out_dir, name)
        _INPUT_FNS["torch.save"](obj, path)
        return path

    def output_record(self, out) -> list:
        """Leaves as CPU tensors plus their type facts (a subclass is recorded, never unwrapped)."""
        rec = []
        for leaf in leaves(out):
            if isinstance(leaf, torch.Tensor):
                exact = type(leaf) is torch.Tensor
                info = {"type": f"{type(leaf).__module__}.{type(leaf).__qualname__}", "exact": exact,
                        "shape": list(leaf.shape), "dtype": str(leaf.dtype), "device": str(leaf.device)}
                if exact and not leaf.is_meta:
                    try:
                        leaf.untyped_storage()
                        rec.append((info, leaf.detach().to("cpu")))
                        continue
                    except Exception as e:  # noqa: BLE001
                        info["error"] = f"no real storage: {e}"
                rec.append((info, None))
            else:
                rec.append(({"type": type(leaf).__name__, "exact": False, "value": repr(leaf)[:200]}, None))
        return rec

    # --- commands ----------------------------------------------------------------------------
    def setup(self, cmd: dict) -> dict:
        self.device = cmd["device"]
        self.out_dir = cmd["out_dir"]
        threads = int(cmd.get("threads") or 0)
        if threads:
            torch.set_num_threads(threads)
        if self.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(self.device).index or 0)
            frac = cmd.get("gpu_memory_fraction")
            if frac and self.role == "candidate":
                torch.cuda.set_per_process_memory_fraction(float(frac))
        from ..tasks.contract import exec_task_module

        ref = exec_task_module(cmd["task_source"], size=cmd["size"], module_name=f"cudal1_reference_{os.getpid()}")
        self.get_inputs = ref.get_inputs
        self.ref_module_dict_ids = {k: id(v) for k, v in ref.__dict__.items()}
        self.ref_module = ref
        self.state_before = guard.backend_state()
        self.l2_baseline = (persisting_l2_limit() or 0) if self.device.startswith("cuda") else 0
        self.py_threads_before = set(threading.enumerate())
        init_inputs = ref.get_init_inputs()
        info: dict = {}
        if self.role == "candidate":
            t0 = _perf()
            module = types.ModuleType("cudal1_candidate")
            module.__dict__["__file__"] = os.path.join(os.getcwd(), "candidate.py")
            sys.modules["cudal1_candidate"] = module
            # A real file: Triton (and inspect) read kernel sources back from it.
            with open(module.__dict__["__file__"], "w", encoding="utf-8") as f:
                f.write(cmd["candidate_source"])
            try:
                code = compile(cmd["candidate_source"], module.__dict__["__file__"], "exec")
                exec(code, module.__dict__)  # noqa: S102 - this process exists to run untrusted code
            except SystemExit as e:
                return {"ok": False, "stage": "build", "error_kind": "exit", "error": f"the candidate called exit({e.code}) on import"}
            except SyntaxError as e:
                return {"ok": False, "stage": "build", "error_kind": "syntax", "error": f"SyntaxError: {e.msg} (line {e.lineno})"}
            except BaseException as e:  # noqa: BLE001
                return {"ok": False, "stage": "build", "error_kind": "import", "error": _short_exc(e)}
            info["build_s"] = _perf() - t0
            cls = module.__dict__.get("ModelNew")
            if cls is None or not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
                return {"ok": False, "stage": "build", "error_kind": "missing-modelnew",
                        "error": "the candidate defines no class ModelNew(nn.Module)"}
            mismatch = _signature_mismatch(ref.Model, cls)
            if mismatch:
                return {"ok": False, "stage": "build", "error_kind": "signature-mismatch", "error": mismatch}
            if cmd.get("build_only"):
                return {"ok": True, "info": info}
        else:
            cls = ref.Model
        _INPUT_FNS["torch.manual_seed"](int(cmd["init_seed"]))
        try:
            model = cls(*init_inputs)
            model = model.to(self.device)
        except SystemExit as e:
            return {"ok": False, "stage": "init", "error_kind": "exit", "error": f"exit({e.code}) while constructing"}
        except BaseException as e:  # noqa: BLE001
            return {"ok": False, "stage": "init", "error_kind": "runtime", "error": _short_exc(e)}
        self.model = model
        self.audit_import()
        return {"ok": True, "info": info, "findings": self.findings}

    def audit_import(self):
        if self.role != "candidate":
            return
        self.check_integrity("after import")
        self.check_state("on import")

    def check_integrity(self, when: str):
        bad = guard.changed(_TIMERS)
        if bad:
            self.finding("timer-tampered", "reject", f"timing functions replaced {when}: {', '.join(bad)}")
        bad = guard.changed(_INPUT_FNS)
        if bad:
            self.finding("input-generation-tampered", "reject", f"torch functions the judge relies on replaced {when}: {', '.join(bad)}")
        changed = [k for k, v in self.ref_module.__dict__.items() if self.ref_module_dict_ids.get(k) != id(v)]
        if changed or self.ref_module.__dict__.get("get_inputs") is not self.get_inputs:
            self.finding("reference-module-tampered", "reject", f"the reference module's names changed {when}: {', '.join(changed)}")

    def check_state(self, when: str):
        now = guard.backend_state()
        diff = {k: (self.state_before[k], v) for k, v in now.items() if self.state_before.get(k) != v}
        if not diff:
            return
        desc = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in diff.items())
        self.finding("global-state-changed", "warn", f"the candidate changed global backend state {when}: {desc}")
        lower = [k for k in diff if k in guard.LOWER_PRECISION_KEYS]
        if lower:
            self.finding("lower-precision-flags", "warn", f"lower-precision settings changed {when}: {', '.join(lower)}")

    def check_leftovers(self, when: str):
        extra = [t for t in threading.enumerate() if t not in self.py_threads_before and t.is_alive() and _thread_busy(t)]
        if extra:
            self.finding("leftover-threads", "reject", f"{len(extra)} Python thread(s) still running {when}: {', '.join(t.name for t in extra[:3])}")
        if self.native_threads is not None and guard.native_thread_count() > self.native_threads:
            self.finding("leftover-threads", "reject",
                         f"native threads grew from {self.native_threads} to {guard.native_thread_count()} {when}")
        kids = guard.child_pids()
        if kids:
            self.finding("leftover-processes", "reject", f"{len(kids)} child process(es) still running {when}")
            for pid in kids:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass

    def check_l2(self, when: str):
        if not self.device.startswith("cuda"):
            return
        limit = persisting_l2_limit()
        if limit is not None and limit > self.l2_baseline:
            # Some drivers start with a non-zero set-aside; only a candidate's increase counts.
            self.finding("l2-persistence-set", "reject",
                         f"{limit} bytes of L2 were set aside for persisting accesses {when} (was {self.l2_baseline})")
            reset_persisting_l2()

    def trials(self, cmd: dict) -> dict:
        """Correctness calls: one per (seed, probe). Outputs saved; facts returned."""
        results = []
        previous = None
        for t in cmd["trials"]:
            inputs = self.make_inputs(t["seed"], t.get("probe"))
            fp = fingerprint(inputs)
            keep = _snapshot_inputs(inputs)
            given = _snapshot_inputs(inputs)  # the program gets its own copies
            if previous is not None and _same_layout(previous, given):
                # New values at the addresses of the previous trial's inputs: a result cache keyed
                # by data_ptr() (or by tensor identity) returns the old output and fails the compare.
                for old, new in zip(previous, given):
                    if isinstance(old, torch.Tensor):
                        old.copy_(new)
                given = previous
            del inputs
            self.poison(int(cmd.get("poison_bytes", 64 << 20)))
            self.sync()
            try:
                out = self.call(given, t["fwd_seed"])
                self.sync()
            except SystemExit as e:
                return {"ok": False, "error_kind": "exit", "error": f"the program called exit({e.code}) in forward"}
            except BaseException as e:  # noqa: BLE001
                return {"ok": False, "error_kind": "runtime", "error": _short_exc(e)}
            mutated = [j for j, (a, b) in enumerate(zip(keep, given)) if not _same(a, b)]
            rec = self.output_record(out)
            path = self.save([r[1] for r in rec], f"trial_{t['name']}.pt")
            entry = {"name": t["name"], "fingerprint": fp, "mutated": mutated, "leaves": [r[0] for r in rec], "path": path}
            if self.role == "reference" and t.get("repeat_check"):
                # Stochastic forward? Same seed twice should agree; another seed may differ.
                again = self.output_record(self.call(_snapshot_inputs(keep), t["fwd_seed"]))
                other = self.output_record(self.call(_snapshot_inputs(keep), t["fwd_seed"] + 7919))
                entry["same_seed_equal"] = all(_same(a[1], b[1]) for a, b in zip(rec, again) if a[1] is not None)
                entry["other_seed_equal"] = all(_same(a[1], b[1]) for a, b in zip(rec, other) if a[1] is not None)
            results.append(entry)
            previous = given
            del out, given, keep
        if self.role == "candidate":
            self.check_leftovers("after the correctness trials")
        return {"ok": True, "trials": results}

    def warmup(self, cmd: dict) -> dict:
        try:
            for k in range(int(cmd["calls"])):
                out = self.call(self.make_inputs(cmd["seed"] + k), cmd["seed"])
                del out
            self.sync()
        except BaseException as e:  # noqa: BLE001
            return {"ok": False, "error_kind": "runtime", "error": _short_exc(e)}
        self.native_threads = guard.native_thread_count()
        if self.role == "candidate":
            self.check_leftovers("after warm-up")
        return {"ok": True}

    def time_round(self, cmd: dict) -> dict:
        """Timed calls, each on fresh inputs in fresh memory; samples of every output saved."""
        cuda = self.device.startswith("cuda")
        Event = _TIMERS.get("torch.cuda.Event")
        times, walls, samples = [], [], []
        previous = None
        n_samples = int(cmd.get("samples_per_call", 512))
        try:
            for k, seed in enumerate(cmd["seeds"]):
                inputs = self.make_inputs(seed)
                self.flush_l2()
                self.check_l2("between timed calls") if k == 0 else None
                self.sync()
                if cuda:
                    start, end = Event(enable_timing=True), Event(enable_timing=True)
                    w0 = _perf()
                    start.record()
                    out = self.call(inputs, seed)
                    _TIMERS["torch.cuda.synchronize"]()  # device-wide: work on every stream counts
                    end.record()
                    end.synchronize()
                    w1 = _perf()
                    times.append(start.elapsed_time(end))
                else:
                    w0 = _perf()
                    out = self.call(inputs, seed)
                    w1 = _perf()
                    times.append((w1 - w0) * 1e3)
                walls.append((w1 - w0) * 1e3)
                samples.append(self.sample_output(out, seed ^ int(cmd["sample_key"]), n_samples))
                if k == len(cmd["seeds"]) - 1:
                    self.save([r[1] for r in self.output_record(out)], f"timed_{cmd['name']}_last.pt")
                previous = (inputs, out)  # keep alive: the next call's inputs get other addresses
            del previous
        except SystemExit as e:
            return {"ok": False, "error_kind": "exit", "error": f"the program called exit({e.code}) while timed"}
        except BaseException as e:  # noqa: BLE001
            return {"ok": False, "error_kind": "runtime", "error": _short_exc(e)}
        path = self.save(samples, f"timed_{cmd['name']}_samples.pt")
        if self.role == "candidate":
            self.check_leftovers("after timed calls")
            self.check_integrity("after timing")
            self.check_state("while timed")
            self.check_l2("after timing")
        return {"ok": True, "times_ms": times, "wall_ms": walls, "samples_path": path}

    def sample_output(self, out, key: int, n: int) -> list:
        rec = []
        g = torch.Generator(device="cpu").manual_seed(key & 0x7FFFFFFFFFFFFFFF)
        for leaf in leaves(out):
            if isinstance(leaf, torch.Tensor) and type(leaf) is torch.Tensor and leaf.numel() > 0 and not leaf.is_meta:
                flat = leaf.detach().reshape(-1)
                idx = torch.randint(0, flat.numel(), (min(n, flat.numel()),), generator=g)
                rec.append(flat[idx.to(flat.device)].to("cpu"))
            else:
                rec.append(None)
        return rec

    def profile(self, cmd: dict) -> dict:
        if not self.device.startswith("cuda"):
            return {"ok": True, "kernels": []}
        from torch.profiler import ProfilerActivity, profile

        inputs = self.make_inputs(cmd["seed"])
        try:
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(int(cmd.get("calls", 3))):
                    self.call(inputs, cmd["seed"])
                self.sync()
        except BaseException as e:  # noqa: BLE001
            return {"ok": False, "error_kind": "runtime", "error": _short_exc(e)}
        totals: dict[str, list] = {}
        for evt in prof.events():
            if str(getattr(evt, "device_type", "")).endswith("CUDA"):
                t = getattr(evt, "device_time", None) or getattr(evt, "cuda_time", 0) or 0
                entry = totals.setdefault(evt.name, [0.0, 0])
                entry[0] += float(t)
                entry[1] += 1
        # The profiler starts threads of its own (CUPTI); they are the judge's, not the candidate's.
        self.native_threads = guard.native_thread_count()
        all_t = sum(v[0] for v in totals.values()) or 1.0
        kernels = sorted(({"name": k[:200], "share": v[0] / all_t, "calls": v[1]} for k, v in totals.items()),
                         key=lambda d: -d["share"])
        return {"ok": True, "kernels": kernels[:25]}

    def audit(self, cmd: dict) -> dict:
        if self.role == "candidate":
            self.check_leftovers("at the end")
            self.check_integrity("at the end")
            self.check_state("at the end")
            self.check_l2("at the end")
        return {"ok": True, "findings": self.findings}


IDLE_FUNCTIONS = {"wait", "get", "_wait_for_tstate_lock", "select", "poll", "acquire", "_worker", "recv", "read"}


def _thread_busy(t: threading.Thread) -> bool:
    """A leftover thread counts unless it is parked: blocked in a wait with no candidate code
    on its stack (idle pool workers of torch.compile, tqdm's monitor)."""
    target = getattr(t, "_target", None) or getattr(t, "function", None)
    code = getattr(target, "__code__", None)
    if code is not None and code.co_filename.endswith("candidate.py"):
        return True  # the candidate's own thread (or a timer about to run its code)
    frame = sys._current_frames().get(t.ident)
    if frame is None:
        return False
    f, top = frame, frame
    while f is not None:
        if f.f_code.co_filename.endswith("candidate.py"):
            return True
        f = f.f_back
    return top.f_code.co_name not in IDLE_FUNCTIONS


def _short_exc(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = next((f"{fr.filename.split('/')[-1]}:{fr.lineno}" for fr in reversed(tb) if "candidate" in fr.filename), "")
    msg = f"{type(e).__name__}: {e}"
    if len(msg) > 4000:
        msg = msg[:4000] + " ..."
    return f"{msg}" + (f" (at {where})" if where else "")


def _signature_mismatch(ref_cls, cand_cls) -> str:
    problems = []
    for meth in ("__init__", "forward"):
        try:
            a = [p for p in inspect.signature(getattr(ref_cls, meth)).parameters.values()
                 if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            b = [p for p in inspect.signature(getattr(cand_cls, meth)).parameters.values() if p.name != "self"]
        except (TypeError, ValueError):
            continue
        var = any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in b)
        req_b = [p for p in b if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not var and (len(req_b) > len(a) or len(b) < len(a)):
            problems.append(f"{meth}({', '.join(p.name for p in b)}) does not accept Model.{meth}({', '.join(p.name for p in a)})")
    return "; ".join(problems)


def main(argv: list[str]) -> int:
    role, fd_in, fd_out = argv[0], int(argv[1]), int(argv[2])
    rx = os.fdopen(fd_in, "r", encoding="utf-8")
    tx = os.fdopen(fd_out, "w", encoding="utf-8")
    worker = Worker(role)
    worker.native_threads = None
    handlers = {"ping": lambda cmd: {"ok": True}, "setup": worker.setup, "trials": worker.trials, "warmup": worker.warmup, "time": worker.time_round,
                "profile": worker.profile, "audit": worker.audit}
    for line in rx:
        cmd = json.loads(line)
        if cmd["op"] == "exit":
            break
        try:
            reply = handlers[cmd["op"]](cmd)
        except SystemExit as e:
            reply = {"ok": False, "error_kind": "exit", "error": f"exit({e.code})"}
        except BaseException as e:  # noqa: BLE001
            reply = {"ok": False, "error_kind": "runtime", "error": _short_exc(e)}
        reply.setdefault("findings", worker.findings)
        tx.write(json.dumps(reply, default=_json_default) + "\n")
        tx.flush()
    return 0


def _json_default(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
