"""The judge's child process: runs either the reference or one candidate, never both.

Started as ``python -m cudal1.judge.worker ROLE FD_IN FD_OUT``. Requests arrive as typed JSON
lines (`protocol`) on FD_IN and replies leave on FD_OUT; stdout/stderr are the program's own and
go to a log file. Every call's outputs are written to a file whose path the parent chose
(`protocol.call_file`); the parent, not this process, compares them, so a candidate process never
holds an expected output, and nothing it reports decides acceptance on its own.

What this process measures: for each timed call, inputs are made and the L2 cache flushed first,
the RNG is seeded and autograd is off before the start event; the call, then a device-wide
synchronize, then the end event. After the end event the outputs are copied out, the inputs'
fingerprints taken and (when asked) the inputs overwritten with a poison pattern, so an output
that aliases an input shows the pattern in the parent's comparison.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import os
import resource
import statistics
import sys
import threading
import time
import traceback
import types
import zlib

import torch

from . import guard, hold, protocol
from ..tasks.contract import exec_task_module
from .cudart import persisting_l2_limit, reset_persisting_l2
from .hold import Hold
from .protocol import INPUT_POISON_F32, SIDE_STREAM_LAG_MS
from .protocol import (Audit, Done, Failure, WarmedUp, KernelTime, ParamInfo, Ping, Pong, Profile, Profiled, RoundDone, Setup,
                       SetupDone, TimeRound, Trials, TrialsDone, Warmup, WireFinding)

# Captured before anything else can run in this process; the harness uses only these.
_perf = time.perf_counter
# Untimed work queued before the L2 flush, so the host has this long (plus the flush) to launch the
# call after the device went idle: launch latency stays out of the timed region, as in a steady loop.
# It is a burst of matrix products on every SM, not an idle wait: on an H200 a 4096 fp32 GEMM ran
# 5.7% slower after 100 ms idle than back to back and 9.6% slower than after a 0.3 ms burst
# (benchmarks/clock_ramp_probe.py), and the judge idles between timed calls while outputs are copied.
SPACER_MS = 0.4
SPACER_N = 1024  # the burst's square fp32 matrices (4 MB each)
# Then, after the L2 flush, every SM is held this long (`hold.Hold`): the host launches the call
# while the hold runs (launch latency up to this is hidden), and work the call puts on other
# streams cannot start before the hold ends, when the start event is recorded.
HOLD_MS = 0.25
_TIMERS = guard.capture(guard.TIMING_NAMES)
_INPUT_FNS = guard.capture(guard.INPUT_NAMES)
_save = torch.save
try:  # the output files are read at once on this machine: a zip checksum doubles the write's time, buys nothing
    from torch.utils.serialization import config as _serialization_config

    _serialization_config.save.compute_crc32 = False
except (ImportError, AttributeError):  # older torch: always checksummed
    pass
_mm = torch.mm
_urandom = os.urandom
# The sandbox sets it before the process starts (`file_size_limit_mb`); the harness's own records obey it too.
_FILE_LIMIT = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
_encode = protocol.encode
_decode = protocol.decode

ALLOC_POISON = 0xFF  # float32/float16/bfloat16 with all bits set are NaN: unwritten memory
INPUT_POISON_INT = -1234567


def leaves(obj) -> list:
    """Flatten a forward's output (tensor, tuple/list/dict of them, or scalars) into a list."""
    if isinstance(obj, (list, tuple)):
        return [x for o in obj for x in leaves(o)]
    if isinstance(obj, dict):
        return [x for k in sorted(obj, key=str) for x in leaves(obj[k])]
    return [obj]


def structure(obj) -> str:
    """The nesting of an output with its leaves elided: ``(T,T)``, ``T``, ``[T,(T,)]``."""
    if isinstance(obj, tuple):
        return "(" + ",".join(structure(o) for o in obj) + ("," if len(obj) == 1 else "") + ")"
    if isinstance(obj, list):
        return "[" + ",".join(structure(o) for o in obj) + "]"
    if isinstance(obj, dict):
        return "{" + ",".join(f"{k}:{structure(obj[k])}" for k in sorted(obj, key=str)) + "}"
    return "T" if isinstance(obj, torch.Tensor) else "V"


def _clone_inputs(inputs):
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


def _fingerprint(inputs) -> list:
    """[sum, sum of |x|] in float64 per tensor input (None for other values)."""
    fp = []
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.numel() and not x.is_complex() and x.dtype != torch.bool:
            d = x.detach()
            fp.append([float(d.sum(dtype=torch.float64)), float(d.abs().sum(dtype=torch.float64))])
        else:
            fp.append(None)
    return fp


def _poison_inputs(inputs):
    with torch.no_grad():
        for x in inputs:
            if not isinstance(x, torch.Tensor) or not x.numel():
                continue
            if x.dtype == torch.float32:
                x.view(torch.int32).fill_(INPUT_POISON_F32)
            elif x.is_floating_point():
                x.fill_(float("nan"))
            elif x.dtype != torch.bool and not x.is_complex():
                x.fill_(INPUT_POISON_INT)


def transform_inputs(inputs, kind: str, seed: int):
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
        out.append(x)
    return out


def perturbed_value(kind: str, seed: int, ref_name: str, base: torch.Tensor, is_buffer: bool) -> torch.Tensor | None:
    """The value a parameter (or buffer) takes in a parameter probe; the same for the reference
    and the candidate because it depends only on the seed, the reference's name and the value."""
    g = torch.Generator(device="cpu").manual_seed((seed + zlib.crc32(ref_name.encode())) & 0x7FFFFFFF)
    x = base.detach().to("cpu", torch.float64)
    if kind == "reinit":
        if is_buffer:  # running statistics keep their sign (a variance must stay positive)
            return x * (1.0 + 0.25 * (2.0 * torch.rand(x.shape, generator=g, dtype=torch.float64) - 1.0))
        rms = float(x.pow(2).mean().sqrt()) if x.numel() else 0.0
        return x + (0.5 * rms + 0.05) * torch.randn(x.shape, generator=g, dtype=torch.float64)
    if kind == "scale":
        return None if is_buffer else x * 1.5
    raise ValueError(f"unknown parameter probe {kind!r}")


class Worker:
    def __init__(self, role: str, fd_in: int, fd_out: int):
        self.role = role
        self.rx = os.fdopen(fd_in, "r", encoding="utf-8")
        self.tx = os.fdopen(fd_out, "w", encoding="utf-8")
        self.channel = (self.rx, self.tx)
        self.model = None
        self.model64 = None
        self.device = "cpu"
        self.out_dir = os.getcwd()
        self.findings: list[WireFinding] = []
        self.l2_buffer = None
        self.spacer_args: tuple | None = None
        self.spacer_count = 1
        self.hold: Hold | None = None  # every SM held before the start event (`time_call`)
        self.hold_sink = None
        self.deferred_warm: tuple[str, bool] | None = None  # (device, with the profiler): see warm_now
        self.kept: dict[str, list] = {}  # outputs of a round kept for Gather (TimeRound.keep)
        self.native_threads: int | None = None
        self.harness: dict[str, tuple] = {}
        self.registrations: frozenset[str] = frozenset()

    # --- helpers -----------------------------------------------------------------------------
    def finding(self, id_: str, message: str):
        """Report catalogue entry ``id_``; the judge gives it the entry's severity."""
        f = WireFinding(id_, message)
        if f not in self.findings:
            self.findings.append(f)

    def sync(self):
        if self.device.startswith("cuda"):
            _TIMERS["torch.cuda.synchronize"]()

    def make_inputs(self, seed: int, probe: str = ""):
        _INPUT_FNS["torch.manual_seed"](seed)
        with torch.device(self.device):
            inputs = self.get_inputs()
        inputs = [x.to(self.device) if isinstance(x, torch.Tensor) else x for x in inputs]
        return transform_inputs(inputs, probe, seed)

    def poison_allocator(self, nbytes: int):
        """Fill memory the caching allocator will hand out next, so unwritten outputs show as NaN."""
        if not self.device.startswith("cuda") or nbytes <= 0:
            return
        torch.cuda.empty_cache()  # a freed block still holding real data must not be handed out
        blocks = [torch.empty(max(nbytes, 1 << 20), dtype=torch.uint8, device=self.device).fill_(ALLOC_POISON)]
        blocks += [torch.empty(1 << 18, dtype=torch.uint8, device=self.device).fill_(ALLOC_POISON) for _ in range(16)]
        del blocks

    def flush_l2(self):
        if not self.device.startswith("cuda"):
            return
        if self.l2_buffer is None:
            l2 = getattr(torch.cuda.get_device_properties(self.device), "L2_cache_size", 50 << 20) or (50 << 20)
            self.l2_buffer = torch.empty(max(2 * l2, 128 << 20), dtype=torch.uint8, device=self.device)
        self.l2_buffer.zero_()

    def spacer(self):
        """Keeps the device busy for at least SPACER_MS with matrix products, so the chip runs at its
        steady pace when the call starts, as in a user's loop (after an idle device and host,
        launching a small call took up to ~0.16 ms on an H200 host). The burst's length is
        measured once (`prepare_spacer`)."""
        if self.spacer_args is None:
            self.prepare_spacer()
        a, b, out = self.spacer_args
        for _ in range(self.spacer_count):
            _mm(a, b, out=out)

    def prepare_spacer(self):
        """The burst's operands (from a private generator: the forward's seeded RNG stays as the
        reference's) and how many products make SPACER_MS; at warm-up, so no timed call is the
        first to pay it."""
        g = torch.Generator(device=self.device).manual_seed(0)
        a = torch.randn(SPACER_N, SPACER_N, device=self.device, generator=g)
        self.spacer_args = (a, a.clone(), torch.empty_like(a))
        self.spacer_count = max(1, math.ceil(SPACER_MS / self._spacer_unit_ms()))
        props = torch.cuda.get_device_properties(self.device)
        self.hold_sink = torch.zeros(1, device=self.device)  # the hold's never-taken store goes here
        self.hold = Hold(props.multi_processor_count, props.max_threads_per_multi_processor, self.hold_sink.data_ptr())

    def _spacer_unit_ms(self) -> float:
        a, b, out = self.spacer_args
        Event, synchronize = _TIMERS["torch.cuda.Event"], _TIMERS["torch.cuda.synchronize"]
        for _ in range(3):
            _mm(a, b, out=out)
        start, end = Event(enable_timing=True), Event(enable_timing=True)
        start.record()
        for _ in range(10):
            _mm(a, b, out=out)
        end.record()
        synchronize()
        return max(start.elapsed_time(end) / 10, 1e-3)

    def own_storages(self) -> dict[int, str]:
        out = {}
        for kind, items in (("parameter", self.model.named_parameters()), ("buffer", self.model.named_buffers())):
            for name, t in items:
                try:
                    out[t.untyped_storage().data_ptr()] = f"{kind} {name}"
                except Exception:  # noqa: BLE001
                    continue
        return out

    def sampled(self, leaf: torch.Tensor, seed: int, n: int) -> torch.Tensor:
        """The leaf's values at `protocol.sample_indices` (gathered where the leaf lives, so only
        they cross to the host)."""
        idx = protocol.sample_indices(leaf.numel(), seed, n, _INPUT_FNS["torch.randint"], _INPUT_FNS["torch.Generator"])
        return _INPUT_FNS["torch.take"](leaf.detach(), _INPUT_FNS["torch.Tensor.to"](idx, leaf.device))

    def output_file(self, out, inputs, own: dict[int, str], previous: tuple | None = None, extra: dict | None = None,
                    sample: tuple[int, int] | None = None, keep: bool = False) -> dict:
        """What the parent reads for one call: CPU copies of the output leaves, facts the parent
        cannot see in a copy (exact type, device, memory shared with inputs or parameters).
        ``sample`` (seed, n): each tensor leaf only at n positions; ``previous`` (an earlier
        call's output, its sample or None): that output read again, as it was written;
        ``keep``: copies of the leaves where they live, for `gather` to write later."""
        input_storages = {}
        for i, x in enumerate(inputs):
            if isinstance(x, torch.Tensor):
                try:
                    input_storages[x.untyped_storage().data_ptr()] = f"input {i}"
                except Exception:  # noqa: BLE001
                    pass
        tensors, info = [], []
        for leaf in leaves(out):
            if isinstance(leaf, torch.Tensor):
                exact = type(leaf) is torch.Tensor
                entry = {"kind": "tensor", "type": f"{type(leaf).__module__}.{type(leaf).__qualname__}", "exact": exact,
                         "device": str(leaf.device), "value": "", "error": "", "aliases": ""}
                if exact and not leaf.is_meta:
                    try:
                        ptr = leaf.untyped_storage().data_ptr()
                        entry["aliases"] = input_storages.get(ptr) or own.get(ptr, "") if ptr else ""
                        if keep:
                            tensors.append(_INPUT_FNS["torch.Tensor.clone"](leaf.detach()))
                        else:
                            picked = self.sampled(leaf, sample[0] + len(tensors), sample[1]) if sample else leaf.detach()
                            tensors.append(picked.to("cpu"))
                        info.append(entry)
                        continue
                    except Exception as e:  # noqa: BLE001
                        entry["error"] = f"no real storage: {e}"
                tensors.append(None)
                info.append(entry)
            else:
                tensors.append(None)
                info.append({"kind": "value", "type": type(leaf).__name__, "exact": False, "device": "",
                             "value": repr(leaf)[:200], "error": "", "aliases": ""})
        record = {"leaves": tensors, "info": info, "structure": structure(out)}
        if sample:
            record.update(sample_seed=sample[0], sample_n=sample[1],
                          shapes=[list(x.shape) if isinstance(x, torch.Tensor) else None for x in leaves(out)])
        if previous is not None:
            prev_out, prev_sample = previous
            record["previous"] = [
                (self.sampled(x, prev_sample[0] + i, prev_sample[1]) if prev_sample else x.detach()).to("cpu")
                if isinstance(x, torch.Tensor) and type(x) is torch.Tensor else None
                for i, x in enumerate(leaves(prev_out))]
        record.update(extra or {})
        return record

    def write(self, record: dict, name: str, k: int):
        size = _tensor_bytes(record)
        if _FILE_LIMIT != resource.RLIM_INFINITY and size > _FILE_LIMIT:
            raise RuntimeError(f"the judge's record of {name} call {k} takes {size / 2**20:.0f} MB, over this process's "
                               f"file size limit of {_FILE_LIMIT / 2**20:.0f} MB: raise the judge's file_size_limit_mb")
        _save(record, protocol.call_file(self.out_dir, name, k))

    # --- integrity (evidence only: see guard) ----------------------------------------------------
    def harness_namespaces(self) -> dict[str, dict]:
        return {"worker": globals(), "Worker": dict(vars(Worker)), "guard": vars(guard), "protocol": vars(protocol),
                "hold": vars(hold), "Hold": dict(vars(Hold)),
                "json": vars(json)}

    def verify(self, when: str, full: bool = False):
        if self.role != "candidate":
            return
        changed = guard.code_changes(self.harness, self.harness_namespaces())
        changed += [f"Worker instance attribute {k}" for k in vars(self) if k in vars(Worker)]
        if self.tx is not self.channel[1] or self.rx is not self.channel[0]:
            changed.append("the reply channel")
        if changed:
            self.finding("harness-tampered", f"the judge's own code or globals changed {when}: {', '.join(changed[:6])}")
        bad = guard.changed(_TIMERS)
        if bad:
            self.finding("timer-tampered", f"timing functions replaced {when}: {', '.join(bad)}")
        bad = guard.changed(_INPUT_FNS)
        if bad:
            self.finding("input-generation-tampered", f"torch functions the judge relies on replaced {when}: {', '.join(bad)}")
        changed = [k for k, v in self.ref_module.__dict__.items() if self.ref_module_dict_ids.get(k) != id(v)]
        if changed or self.ref_module.__dict__.get("get_inputs") is not self.get_inputs:
            self.finding("reference-module-tampered", f"the reference module's names changed {when}: {', '.join(changed)}")
        foreign = guard.foreign_registrations(None if full else guard.HARNESS_OPS, self.registrations)
        hooks = guard.active_hooks()
        if foreign or hooks:
            self.finding("dispatch-override",
                         f"operators or hooks changed {when}: {', '.join((foreign + hooks)[:6])}")

    def check_state(self, when: str):
        now = guard.backend_state()
        diff = {k: (self.state_before[k], v) for k, v in now.items() if self.state_before.get(k) != v}
        if not diff:
            return
        desc = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in diff.items())
        self.finding("global-state-changed", f"the candidate changed global backend state {when}: {desc}")
        lower = [k for k in diff if k in guard.LOWER_PRECISION_KEYS]
        if lower:
            self.finding("lower-precision-flags", f"lower-precision settings changed {when}: {', '.join(lower)}")

    def check_leftovers(self, when: str):
        if self.role != "candidate":
            return
        extra = [t for t in threading.enumerate() if t not in self.py_threads_before and t.is_alive() and _thread_busy(t)]
        if extra:
            self.finding("leftover-threads", f"{len(extra)} Python thread(s) still running {when}: {', '.join(t.name for t in extra[:3])}")
        if self.native_threads is not None and guard.native_thread_count() > self.native_threads:
            self.finding("leftover-threads",
                         f"native threads grew from {self.native_threads} to {guard.native_thread_count()} {when}")
        kids = guard.child_pids()
        if kids:
            self.finding("leftover-processes", f"{len(kids)} child process(es) still running {when}")
            for pid in kids:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass

    def check_l2(self, when: str):
        if not self.device.startswith("cuda") or self.role != "candidate":
            return
        limit = persisting_l2_limit()
        if limit is not None and limit > self.l2_baseline:
            # Some drivers start with a non-zero set-aside; only a candidate's increase counts.
            self.finding("l2-persistence-set",
                         f"{limit} bytes of L2 were set aside for persisting accesses {when} (was {self.l2_baseline})")
            reset_persisting_l2()

    # --- requests ----------------------------------------------------------------------------
    def setup(self, req: Setup):
        self.device = req.device
        if req.threads:
            torch.set_num_threads(req.threads)
        if self.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(self.device).index or 0)
            if req.gpu_memory_fraction and self.role == "candidate":
                torch.cuda.set_per_process_memory_fraction(float(req.gpu_memory_fraction))
        ref = exec_task_module(req.task_source, size=req.size, module_name=f"cudal1_reference_{os.getpid()}")
        self.get_inputs = ref.get_inputs
        self.ref_module_dict_ids = {k: id(v) for k, v in ref.__dict__.items()}
        self.ref_module = ref
        self.state_before = guard.backend_state()
        self.l2_baseline = (persisting_l2_limit() or 0) if self.device.startswith("cuda") else 0
        self.py_threads_before = set(threading.enumerate())
        init_inputs = ref.get_init_inputs()
        import_s = 0.0
        if self.role == "candidate":
            self.registrations = guard.registration_baseline()
            self.harness = guard.code_snapshot(self.harness_namespaces())
            t0 = _perf()
            module = types.ModuleType("cudal1_candidate")
            module.__dict__["__file__"] = os.path.join(os.getcwd(), "candidate.py")
            sys.modules["cudal1_candidate"] = module
            # A real file: Triton (and inspect) read kernel sources back from it.
            with open(module.__dict__["__file__"], "w", encoding="utf-8") as f:
                f.write(req.candidate_source)
            try:
                code = compile(req.candidate_source, module.__dict__["__file__"], "exec")
                exec(code, module.__dict__)  # noqa: S102 - this process exists to run untrusted code
            except SystemExit as e:
                return Failure("exit", f"the candidate called exit({e.code}) on import")
            except SyntaxError as e:
                return Failure("syntax", f"SyntaxError: {e.msg} (line {e.lineno})")
            except BaseException as e:  # noqa: BLE001
                return Failure("import", _short_exc(e))
            import_s = _perf() - t0
            cls = module.__dict__.get("ModelNew")
            if cls is None or not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
                return Failure("missing-modelnew", "the candidate defines no class ModelNew(nn.Module)")
            mismatch = _signature_mismatch(ref.Model, cls)
            if mismatch:
                return Failure("signature-mismatch", mismatch)
            if req.build_only:
                return SetupDone((), import_s)
        else:
            cls = ref.Model
        _INPUT_FNS["torch.manual_seed"](int(req.init_seed))
        try:
            self.model = cls(*init_inputs).to(self.device)
        except SystemExit as e:
            return Failure("exit", f"exit({e.code}) while constructing")
        except BaseException as e:  # noqa: BLE001
            return Failure("runtime", _short_exc(e))
        if self.role == "reference" and req.float64_reference:
            try:
                self.model64 = copy.deepcopy(self.model).double()
            except Exception:  # noqa: BLE001 - then tolerances are judged without it
                self.model64 = None
        params = tuple(ParamInfo(n, tuple(t.shape), str(t.dtype))
                       for n, t in list(self.model.named_parameters()) + list(self.model.named_buffers()))
        self.verify("on import", full=True)
        self.check_state("on import")
        return SetupDone(params, import_s)

    def perturb(self, kind: str, seed: int, names, model) -> list:
        """Apply a parameter probe in place (version counters move, as with load_state_dict);
        returns what restores the model."""
        if not kind:
            return []
        params = dict(model.named_parameters())
        buffers = dict(model.named_buffers())
        saved = []
        with torch.no_grad():
            for ref_name, mine in names:
                t = params.get(mine, buffers.get(mine))
                if t is None or not t.is_floating_point():
                    continue
                new = perturbed_value(kind, seed, ref_name, t, mine not in params)
                if new is None:
                    continue
                saved.append((t, t.detach().clone()))
                t.copy_(new.to(t.dtype))
        return saved

    @staticmethod
    def restore(saved: list):
        with torch.no_grad():
            for t, old in saved:
                t.copy_(old)

    def trials(self, req: Trials):
        """Correctness calls: one file per trial with the outputs, the inputs (the reference's
        before the call, the candidate's after it) and the previous trial's output read again."""
        previous, previous_out = None, None
        stochastic = nondeterministic = False
        names = req.param_map
        for t in req.trials:
            inputs = self.make_inputs(t.seed, t.probe)
            keep = _clone_inputs(inputs)
            given = _clone_inputs(inputs)  # the program gets its own copies
            if previous is not None and _same_layout(previous, given):
                # New values at the addresses of the previous trial's inputs: a result cache keyed
                # by data_ptr() (or by tensor identity) returns the old output and fails the compare.
                for old, new in zip(previous, given):
                    if isinstance(old, torch.Tensor):
                        old.copy_(new)
                given = previous
            del inputs
            saved = self.perturb(t.params, t.seed, names, self.model)
            self.poison_allocator(req.poison_bytes)
            self.sync()
            try:
                out = self.model_call(given, t.fwd_seed)
                self.sync()
            except SystemExit as e:
                return Failure("exit", f"the program called exit({e.code}) in forward")
            except BaseException as e:  # noqa: BLE001
                return Failure("runtime", _short_exc(e))
            extra = {"inputs": [x.detach().to("cpu") if isinstance(x, torch.Tensor) else None
                                for x in (keep if self.role == "reference" else given)]}
            if self.role == "reference":
                extra["out64"] = self.float64_outputs(keep, t, names)
                if t.repeat_check:
                    again = self.model_call(_clone_inputs(keep), t.fwd_seed)
                    other = self.model_call(_clone_inputs(keep), t.fwd_seed + 7919)
                    same = all(_same(a, b) for a, b in zip(leaves(out), leaves(again)) if isinstance(a, torch.Tensor))
                    other_same = all(_same(a, b) for a, b in zip(leaves(out), leaves(other)) if isinstance(a, torch.Tensor))
                    stochastic, nondeterministic = same and not other_same, not same
            # The previous trial's output read again: the parent checks the candidate's (storage reused
            # for a later output); the trusted reference's copy would only be written and thrown away.
            # (Timed rounds keep it on both sides: their harness work is compared, see untimed_work.)
            again = (previous_out, None) if self.role != "reference" and previous_out is not None else None
            self.write(self.output_file(out, given, self.own_storages(), again, extra), t.name, 0)
            self.restore(saved)
            previous, previous_out = given, out
            del keep
        self.check_leftovers("after the correctness trials")
        self.verify("after the correctness trials")
        return TrialsDone(stochastic, nondeterministic)

    def model_call(self, inputs, fwd_seed: int, model=None):
        _INPUT_FNS["torch.manual_seed"](fwd_seed)
        with torch.no_grad():
            return (self.model if model is None else model)(*inputs)

    def float64_outputs(self, inputs, t, names) -> list | None:
        """The reference evaluated in float64 on the same inputs (the yardstick for tolerances)."""
        if self.model64 is None:
            return None
        saved = self.perturb(t.params, t.seed, names, self.model64)
        try:
            wide = [x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in _clone_inputs(inputs)]
            out = self.model_call(wide, t.fwd_seed, self.model64)
            return [x.detach().to("cpu") if isinstance(x, torch.Tensor) else None for x in leaves(out)]
        except Exception:  # noqa: BLE001 - an op without float64 support: judged without it
            return None
        finally:
            self.restore(saved)

    def warmup(self, req: Warmup):
        try:
            if self.device.startswith("cuda") and self.spacer_args is None:
                self.prepare_spacer()
            for k in range(req.calls):
                out = self.model_call(self.make_inputs(req.seed + k), req.seed)
                del out
            self.sync()
            # Only the trusted reference's floor is used: the candidate's process skips the work.
            floor, sync = self.measure_floor(self.make_inputs(req.seed)) if self.role == "reference" else (0.0, 0.0)
        except BaseException as e:  # noqa: BLE001
            return Failure("runtime", _short_exc(e))
        self.native_threads = guard.native_thread_count()
        self.check_leftovers("after warm-up")
        self.verify("after warm-up")
        return WarmedUp(floor, sync)

    def measure_floor(self, inputs, calls: int = 21) -> tuple[float, float]:
        """The time this harness reports for an empty forward (median): the smallest time it can
        tell apart from nothing, reported with every verdict; and what a device-wide wait on an
        idle device costs the host (p90 ms; 0 on the CPU), which sets the side-stream threshold."""
        empty = lambda *args: args[0] if args else None  # noqa: E731
        times, waits = [], []
        for _ in range(calls):
            times.append(self.time_call(empty, inputs)[0])
            if self.device.startswith("cuda"):
                t0 = _perf()
                _TIMERS["torch.cuda.synchronize"]()
                waits.append((_perf() - t0) * 1e3)
        return statistics.median(times), (sorted(waits)[int(0.9 * (len(waits) - 1))] if waits else 0.0)

    def time_call(self, fn, inputs, lag_ms: float = SIDE_STREAM_LAG_MS) -> tuple[float, object, bool]:
        """One call timed: (milliseconds, its output, whether work on other streams outlasted it).

        CUDA: the device is idle, then a burst of matrix products (SPACER_MS), the L2 flush and a
        hold of every SM (HOLD_MS) are queued, and events on the current stream bracket the call,
        with nothing of the harness between them. The host calls once the flush is done, so the
        call's launches queue up behind the hold, as in a user's loop where the previous step
        keeps the GPU busy (and as triton's do_bench times): launch latency up to the hold's
        length is hidden, launch work beyond it is counted (a host-bound program is timed at its
        host's pace, less that allowance). While the hold runs no other kernel's block fits on
        any SM, so work the call puts on side streams starts no earlier than the start event
        (behind the spacer alone it could run, and end, on the SMs the products left free). Completion must be
        device-wide (work left on side streams counts), yet a device synchronize before the end
        event would add a host round-trip to every call. So the end event is waited for first,
        then the whole device: when that second wait takes longer than ``lag_ms`` (side streams
        outlasting the current stream), the call's time runs to an event recorded after the
        device went idle instead."""
        if not self.device.startswith("cuda"):
            t0 = _perf()
            out = fn(*inputs)
            return (_perf() - t0) * 1e3, out, False
        Event, synchronize = _TIMERS["torch.cuda.Event"], _TIMERS["torch.cuda.synchronize"]
        start, end, lead = Event(enable_timing=True), Event(enable_timing=True), Event()
        synchronize()
        self.spacer()
        self.flush_l2()
        lead.record()
        self.hold.launch(_TIMERS["torch.cuda.current_stream"](self.device).cuda_stream, HOLD_MS)
        start.record()
        lead.synchronize()  # the hold's blocks are placed once the flush ends: only then the call
        out = fn(*inputs)
        end.record()
        end.synchronize()
        t_stream = _perf()
        synchronize()
        if (_perf() - t_stream) * 1e3 <= lag_ms:
            return start.elapsed_time(end), out, False
        after = Event(enable_timing=True)
        after.record()
        after.synchronize()
        return start.elapsed_time(after), out, True

    def time_round(self, req: TimeRound):
        """Timed calls, each on fresh inputs in fresh memory with L2 flushed; every call's outputs
        to a file. Seeding the forward's RNG and ``no_grad`` happen outside the timed region."""
        seed_rng = _INPUT_FNS["torch.manual_seed"]
        model = self.model
        times, previous, late = [], None, 0
        last = len(req.seeds) - 1
        own = self.own_storages()  # parameters keep their memory through a round
        self.kept = {}  # a round's kept outputs live until their Gather, or the next round
        try:
            with torch.no_grad():
                for k, (seed, fwd_seed) in enumerate(zip(req.seeds, req.fwd_seeds)):
                    inputs = self.make_inputs(seed)
                    seed_rng(fwd_seed)
                    ms, out, outlasted = self.time_call(model, inputs, req.lag_ms)
                    times.append(ms)
                    late += outlasted
                    # Drawn now, after the call: whether this call's large outputs are written whole
                    # or at positions of a fresh seed (the candidate cannot know which, or where).
                    sample = self.draw_sample(out, req.sample)
                    extra = {"inputs_fp": _fingerprint(inputs)}
                    if req.poison_inputs:
                        _poison_inputs(inputs)
                    if req.keep:  # the trusted reference: a copy on the device now, written on Gather
                        self.kept.setdefault(req.name, []).append(self.output_file(out, inputs, own, None, extra, keep=True))
                    else:
                        self.write(self.output_file(out, inputs, own, previous[1:] if (k == last and previous) else None,
                                                    extra, sample), req.name, k)
                    previous = (inputs, out, sample)  # kept alive: the next call's inputs get other addresses
            del previous
        except SystemExit as e:
            return Failure("exit", f"the program called exit({e.code}) while timed")
        except BaseException as e:  # noqa: BLE001
            return Failure("runtime", _short_exc(e))
        return RoundDone(tuple(times), late)

    def gather(self, req: protocol.Gather):
        """Write the outputs kept from round ``req.name``: each call whole, or at the positions the
        candidate's same call was checked at. Then drop them."""
        kept = self.kept.pop(req.name, None)
        if kept is None or len(kept) != len(req.seeds):
            return Failure("runtime", f"no kept outputs of round {req.name} for {len(req.seeds)} calls")
        for k, (record, seed) in enumerate(zip(kept, req.seeds)):
            tensors = record["leaves"]
            if seed >= 0:
                record.update(sample_seed=seed, sample_n=req.n,
                              shapes=[list(t.shape) if t is not None else None for t in tensors])
            record["leaves"] = [None if t is None else (self.sampled(t, seed + i, req.n) if seed >= 0 else t).to("cpu")
                                for i, t in enumerate(tensors)]
            self.write(record, req.name, k)
            kept[k] = None
        return Done()

    @staticmethod
    def draw_sample(out, n: int) -> tuple[int, int] | None:
        """(seed, n) when this call's outputs are to be checked on a sample, None for whole."""
        if not n or _tensor_bytes(out) <= protocol.SAMPLE_FROM_BYTES:
            return None
        u = int.from_bytes(_urandom(8), "little")
        if (u % 1_000_000) < protocol.FULL_CALL_SHARE * 1_000_000:
            return None
        return int.from_bytes(_urandom(6), "little"), n

    def profile(self, req: Profile):
        if not self.device.startswith("cuda"):
            return Profiled(())
        from torch.profiler import ProfilerActivity, profile

        inputs = self.make_inputs(req.seed)
        try:
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(req.calls):
                    self.model_call(inputs, req.seed)
                self.sync()
        except BaseException as e:  # noqa: BLE001
            return Failure("runtime", _short_exc(e))
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
        kernels = sorted((KernelTime(k[:200], v[0] / all_t, v[1]) for k, v in totals.items()), key=lambda d: -d.share)
        return Profiled(tuple(kernels[:25]))

    def audit(self, req: Audit):
        """Checks between rounds (outside the round the parent's clock measures) and at the end."""
        when = "at the end" if req.full else "after timed calls"
        self.check_leftovers(when)
        self.verify(when, full=req.full)
        self.check_state(when)
        self.check_l2(when)
        return Done()

    # --- the loop ----------------------------------------------------------------------------
    def warm_now(self, req=None):
        """The device warm-up this process was started without (``later-`` in its arguments): on
        the judge's `WarmDevice`, or before the first request that needs the device."""
        if self.deferred_warm is not None:
            device, profiler = self.deferred_warm
            self.deferred_warm = None
            warm_device(device, warm_profiler=profiler)
        return Pong()

    def serve(self) -> int:
        handlers = {Setup: self.setup, Trials: self.trials, Warmup: self.warmup, TimeRound: self.time_round,
                    Profile: self.profile, Audit: self.audit, Ping: lambda req: Pong(),
                    protocol.WarmDevice: self.warm_now, protocol.Gather: self.gather}
        for line in self.rx:
            req = _decode(line, protocol.REQUESTS)
            if isinstance(req, protocol.Exit):
                break
            try:
                if self.deferred_warm is not None and not isinstance(req, Ping):
                    self.warm_now()
                reply = handlers[type(req)](req)
            except SystemExit as e:
                reply = Failure("exit", f"exit({e.code})")
            except BaseException as e:  # noqa: BLE001
                reply = Failure("runtime", _short_exc(e))
            reply = _with_findings(reply, self.findings)
            self.tx.write(_encode(reply))
            self.tx.flush()
        return 0


def _with_findings(reply, findings):
    return dataclasses.replace(reply, findings=tuple(findings))


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


def _unlist_judge_modules():
    """Take the judge's modules out of ``sys.modules``: the harness keeps its own references,
    while a candidate's ``import cudal1.judge.worker`` (or ``.guard``) gets a fresh, unused copy.
    Reaching the running harness then takes introspection (gc, frames, sys.modules walks),
    which the static scan rejects."""
    for name in [n for n in sys.modules if n == "cudal1" or n.startswith("cudal1.")]:
        del sys.modules[name]


def _tensor_bytes(obj) -> int:
    """Bytes of the plain tensors in an output or a record (for a record: what its file takes,
    less a little metadata)."""
    return sum(x.numel() * x.element_size() for x in leaves(obj) if type(x) is torch.Tensor)


def warm_device(device: str, warm_profiler: bool) -> None:
    """Pay the device's one-time start-up costs while the process starts (which the judge does
    ahead of the evaluation that takes the process over), not inside its measured stages: the
    CUDA context, cuBLAS's handle, and with ``warm_profiler`` the profiler's first session
    (CUPTI loads once per process). Nothing here depends on a task or a candidate."""
    if not device.startswith("cuda"):
        return
    torch.cuda.set_device(torch.device(device).index or 0)
    a = torch.ones(64, 64, device=device)
    (a @ a).sum().item()
    if warm_profiler:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            (a + 1).sum().item()
        prof.events()


def main(argv: list[str]) -> int:
    role, fd_in, fd_out = argv[0], int(argv[1]), int(argv[2])
    if role == "reference":
        from . import sandbox

        # Another process of the same user (a candidate under the basic sandbox) cannot read this
        # one's memory, files or environment through /proc.
        sandbox.harden_reference_process()
    worker = Worker(role, fd_in, fd_out)
    warm = argv[4] if len(argv) > 4 else "-"
    if warm.startswith("later-"):  # a spare: imports now, the device when the judge says (WarmDevice)
        worker.deferred_warm = (argv[3], warm == "later-warm-profiler")
    elif warm != "-":
        warm_device(argv[3], warm_profiler=warm == "warm-profiler")
    if role == "candidate":
        _unlist_judge_modules()
    return worker.serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
