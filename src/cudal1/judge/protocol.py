"""What the judge and its worker processes say to each other: typed, frozen messages.

Every request the parent sends and every reply a worker gives is one of the dataclasses below,
sent as one JSON line ``{"type": NAME, ...fields}``. `decode` accepts only the reply type the
parent asked for, with exactly its fields and the right types; anything else raises
`ProtocolError`, which the judge turns into a rejection (a candidate's process that forges or
garbles its replies never passes). Tensors never travel in these messages: they go through
files whose paths the parent chooses (see `call_file`).

Which error kinds become which verdict is decided in one place, `ERROR_VERDICTS`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass

# --- requests (parent -> worker) -------------------------------------------------------------


@dataclass(frozen=True)
class TrialSpec:
    """One correctness call: inputs from ``seed`` (transformed by ``probe``), forward under
    ``fwd_seed``, parameters perturbed by ``params`` (``reinit`` | ``scale`` | '')."""

    name: str
    seed: int
    fwd_seed: int
    probe: str = ""
    params: str = ""
    repeat_check: bool = False


@dataclass(frozen=True)
class Setup:
    device: str
    threads: int
    task_source: str
    size: str
    candidate_source: str
    init_seed: int
    build_only: bool
    gpu_memory_fraction: float
    float64_reference: bool = False


@dataclass(frozen=True)
class Trials:
    trials: tuple[TrialSpec, ...]
    poison_bytes: int
    param_map: tuple[tuple[str, str], ...] = ()  # (reference name, this process's name)


# After the end event completed, a device-wide wait longer than this means side streams were still
# busy: the default, which the parent raises to a few of the idle waits the trusted process measured.
SIDE_STREAM_LAG_MS = 0.02
# A timed call whose tensor outputs exceed this many bytes may be checked on a sample (TimeRound.sample):
# the candidate's process draws, after the call, whether it writes the whole output (FULL_CALL_SHARE
# of such calls) or the values at `sample_indices` of a seed it also draws then.
SAMPLE_FROM_BYTES = 16 << 20
FULL_CALL_SHARE = 0.1
# The reference keeps a round's outputs (copies on its device) for `Gather` when they take at most this.
KEEP_BYTES = 8 << 30


@dataclass(frozen=True)
class Warmup:
    seed: int
    calls: int


@dataclass(frozen=True)
class TimeRound:
    name: str
    seeds: tuple[int, ...]
    fwd_seeds: tuple[int, ...]
    poison_inputs: bool
    lag_ms: float = SIDE_STREAM_LAG_MS  # a device-wide wait after the end event longer than this: side streams outlasted the call
    sample: int = 0  # values per large output to write for most calls (see SAMPLE_FROM_BYTES); 0: every value
    keep: bool = False  # (the reference) keep the outputs in the process, written only on `Gather`


@dataclass(frozen=True)
class Gather:
    """The reference writes the outputs it kept from round ``name``: call k whole when
    ``seeds[k]`` is -1, else at `sample_indices` of ``seeds[k]`` (plus the leaf's position), ``n``
    values per output, the positions the candidate's call k was checked at."""
    name: str
    seeds: tuple[int, ...]
    n: int


@dataclass(frozen=True)
class Profile:
    seed: int
    calls: int


@dataclass(frozen=True)
class Audit:
    full: bool = True  # False between rounds: only the quick checks


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class WarmDevice:
    """A process started with its device warm-up deferred (a spare started ahead) pays it now:
    the judge sends this once the evaluation running beside it has finished timing."""


@dataclass(frozen=True)
class Exit:
    pass


# --- replies (worker -> parent) --------------------------------------------------------------


@dataclass(frozen=True)
class WireFinding:
    """A finding the candidate's process reports: a catalogue id and a message (the judge sets
    the severity from the catalogue; it accepts no severity from the candidate's side)."""

    id: str
    message: str


@dataclass(frozen=True)
class ParamInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class KernelTime:
    name: str
    share: float
    calls: int


@dataclass(frozen=True)
class Failure:
    """Any request can fail: ``error_kind`` is a key of `ERROR_VERDICTS`."""

    error_kind: str
    error: str
    findings: tuple[WireFinding, ...] = ()


@dataclass(frozen=True)
class Pong:
    findings: tuple[WireFinding, ...] = ()


@dataclass(frozen=True)
class SetupDone:
    params: tuple[ParamInfo, ...]
    import_s: float
    findings: tuple[WireFinding, ...] = ()


@dataclass(frozen=True)
class TrialsDone:
    stochastic: bool  # the reference only: same seed agrees, another seed differs
    nondeterministic: bool  # the reference only: same seed twice differs
    findings: tuple[WireFinding, ...] = ()


@dataclass(frozen=True)
class WarmedUp:
    floor_ms: float  # the reference process: its time for an empty forward (median); 0 from a candidate
    sync_ms: float = 0.0  # the reference process: host time of a device-wide wait on an idle device (p90)
    findings: tuple[WireFinding, ...] = ()


@dataclass(frozen=True)
class RoundDone:
    times_ms: tuple[float, ...]
    late_calls: int = 0  # calls whose work on other streams outlasted the current stream's
    findings: tuple[WireFinding, ...] = ()


@dataclass(frozen=True)
class Done:
    findings: tuple[WireFinding, ...] = ()


@dataclass(frozen=True)
class Profiled:
    kernels: tuple[KernelTime, ...]
    findings: tuple[WireFinding, ...] = ()


REQUESTS = {c.__name__: c for c in (Setup, Trials, Warmup, TimeRound, Gather, Profile, Audit, Ping, WarmDevice, Exit)}
REPLIES = {c.__name__: c for c in (Failure, Pong, SetupDone, TrialsDone, WarmedUp, RoundDone, Done, Profiled)}
REPLY_TO = {Setup: SetupDone, Trials: TrialsDone, Warmup: WarmedUp, TimeRound: RoundDone, Profile: Profiled, Audit: Done, Ping: Pong, WarmDevice: Pong, Gather: Done}

# error kind -> (verdict, finding id). A candidate process's failure maps here; the reference's
# failures are the judge's own errors (they raise).
ERROR_VERDICTS = {
    "exit": ("runtime_error", "candidate-exit"),
    "syntax": ("build_error", "build-failed"),
    "import": ("build_error", "build-failed"),
    "missing-modelnew": ("build_error", "missing-modelnew"),
    "signature-mismatch": ("build_error", "signature-mismatch"),
    "runtime": ("runtime_error", "crash"),
    "sandbox": ("runtime_error", "sandbox-denied"),
    "timeout": ("timeout", "timeout"),
    "crash": ("runtime_error", "crash"),
    "protocol": ("rejected", "reply-malformed"),
}


class ProtocolError(ValueError):
    """A message that is not exactly one of the types above (or not the one asked for)."""


def encode(msg) -> str:
    """One JSON line for a request or reply (non-finite floats become null)."""
    name = type(msg).__name__
    if name not in REQUESTS and name not in REPLIES:
        raise TypeError(f"not a protocol message: {name}")
    return json.dumps({"type": name, **_plain(dataclasses.asdict(msg))}, allow_nan=False) + "\n"


def _plain(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def decode(line: str | bytes, allowed: dict[str, type]):
    """The message in ``line`` if it is one of ``allowed`` with exactly its fields and types."""
    try:
        raw = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(raw, dict) or raw.get("type") not in allowed:
        got = raw.get("type") if isinstance(raw, dict) else type(raw).__name__
        raise ProtocolError(f"unexpected message type {got!r} (expected {', '.join(allowed)})")
    cls = allowed[raw.pop("type")]
    return _build(cls, raw, cls.__name__)


def _build(cls, raw, where: str):
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: expected an object")
    hints = typing.get_type_hints(cls, globalns=globals())  # not via sys.modules (see worker.main)
    names = {f.name for f in dataclasses.fields(cls)}
    extra = set(raw) - names
    if extra:
        raise ProtocolError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProtocolError(f"{where}: missing field {f.name}")
            continue
        values[f.name] = _coerce(raw[f.name], hints[f.name], f"{where}.{f.name}")
    return cls(**values)


def _coerce(value, hint, where: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ProtocolError:
                continue
        raise ProtocolError(f"{where}: {value!r} fits none of {hint}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list):
            raise ProtocolError(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ProtocolError(f"{where}: expected {len(args)} items")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise ProtocolError(f"{where}: expected true/false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(f"{where}: expected an integer")
        return value
    if hint is float:
        if value is None:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(f"{where}: expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ProtocolError(f"{where}: expected a string")
        return value
    raise ProtocolError(f"{where}: unsupported type {hint}")


# After each timed call the worker overwrites float32 inputs with this quiet NaN; the parent
# recognises it in an output that shares the inputs' memory (compare.py).
INPUT_POISON_F32 = 0x7FC0DEAD


def call_file(out_dir: str, name: str, k: int) -> str:
    """Where a worker writes the outputs of call ``k`` of round (or trial) ``name``; the parent
    computes the same path itself and never follows a path a worker names."""
    return f"{out_dir}/{name}.{k}.pt"


__all__ = [
    "ERROR_VERDICTS", "REPLIES", "REPLY_TO", "REQUESTS", "ProtocolError", "call_file", "decode", "encode",
    "Audit", "Done", "Exit", "Failure", "KernelTime", "ParamInfo", "Ping", "Pong", "Profile", "Profiled", "WarmDevice", "Gather",
    "RoundDone", "Setup", "SetupDone", "TimeRound", "Trials", "TrialSpec", "TrialsDone", "WarmedUp", "Warmup", "WireFinding",
]


def sample_indices(numel: int, seed: int, n: int, randint, generator):
    """The flat positions a sampled timed call's output is checked at: ``n`` drawn with
    replacement from ``seed`` on the CPU (the worker and the judge get the same ones). The worker
    passes the functions it captured before the candidate was imported."""
    g = generator()
    g.manual_seed(seed)
    return randint(0, numel, (n,), generator=g)
