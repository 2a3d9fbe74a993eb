"""Reading one call's outputs back from a worker, in the parent, without trusting the file.

A worker writes each call's outputs with ``torch.save`` to the path `protocol.call_file` names;
the parent opens that path itself (never one a worker names), refuses links and anything but a
regular file inside the worker's folder, loads it with ``weights_only=True`` (no code runs),
checks every field's type, and deletes it. Anything else is a `ProtocolError`: the judge rejects
the candidate (a reply it cannot read is never a pass).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

import torch

from .protocol import ProtocolError

MAX_FILE_BYTES = 64 << 30


@dataclass(frozen=True)
class LeafInfo:
    kind: str  # "tensor" | "value"
    type: str
    exact: bool
    device: str
    value: str
    error: str
    aliases: str  # "" or "input 0" / "parameter w": memory shared with an input or parameter


@dataclass(frozen=True)
class CallRecord:
    """One call as the worker saw it: output leaves (CPU copies, None for non-tensors), facts
    about them, and what the request asked for (inputs, fingerprints, float64 outputs, the
    previous call's output read again)."""

    leaves: tuple[torch.Tensor | None, ...]
    info: tuple[LeafInfo, ...]
    structure: str
    inputs: tuple[torch.Tensor | None, ...] | None = None
    inputs_fp: tuple[tuple[float, float] | None, ...] | None = None
    out64: tuple[torch.Tensor | None, ...] | None = None
    previous: tuple[torch.Tensor | None, ...] | None = None
    # A sampled timed call: each tensor leaf (and ``previous``) holds its values at
    # `protocol.sample_indices(numel, sample_seed + i, sample_n)`; ``shapes`` are the full shapes.
    sample_seed: int | None = None
    sample_n: int | None = None
    shapes: tuple[tuple[int, ...] | None, ...] | None = None

    def full_shapes(self) -> tuple[tuple[int, ...] | None, ...]:
        """Each leaf's shape as the call returned it (a sampled record's leaves are samples)."""
        if self.sample_seed is not None:
            return self.shapes
        return tuple(tuple(t.shape) if t is not None else None for t in self.leaves)


_INFO_FIELDS = {"kind": str, "type": str, "exact": bool, "device": str, "value": str, "error": str, "aliases": str}


def read_call(path: str, folder: str, keep: bool = False, mmap: bool = False) -> CallRecord:
    """Load and validate the call file at ``path`` (which must lie directly in ``folder``).

    ``mmap``: map the file instead of reading it (no copy; for a 256 MB output a third of the
    read's time on a CPU). Only for a folder no untrusted process can write: a mapped file's
    pages change when the file does, after the read has returned. The candidate's files are read
    in full at once."""
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(folder):
        raise ProtocolError(f"{path}: not in the worker's folder")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise ProtocolError(f"the call's output file is missing or a link: {os.path.basename(path)} ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
            raise ProtocolError(f"{os.path.basename(path)}: not a regular file of a sane size")
        with os.fdopen(fd, "rb", closefd=False) as f:
            try:
                # The path of the descriptor opened above (checked not to be a link), for mmap.
                src = f"/proc/self/fd/{fd}" if mmap else f
                raw = torch.load(src, weights_only=True, map_location="cpu", mmap=mmap)
            except Exception as e:  # noqa: BLE001 - any unreadable file is the worker's fault
                raise ProtocolError(f"{os.path.basename(path)}: unreadable ({type(e).__name__}: {str(e)[:200]})") from None
    finally:
        os.close(fd)
        if not keep:
            try:
                os.unlink(path)
            except OSError:
                pass
    return _validate(raw, os.path.basename(path))


def _tensors(value, where: str, allow_none: bool = True):
    if value is None and allow_none:
        return None
    if not isinstance(value, list) or not all(v is None or type(v) is torch.Tensor for v in value):
        raise ProtocolError(f"{where}: expected a list of tensors")
    return tuple(value)


def _validate(raw, where: str) -> CallRecord:
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: expected a mapping")
    known = {"leaves", "info", "structure", "inputs", "inputs_fp", "out64", "previous", "sample_seed", "sample_n", "shapes"}
    if set(raw) - known or not {"leaves", "info", "structure"} <= set(raw):
        raise ProtocolError(f"{where}: unexpected or missing keys {sorted(set(raw) ^ known)}")
    leaves = _tensors(raw["leaves"], f"{where}.leaves", allow_none=False)
    info_raw = raw["info"]
    if not isinstance(info_raw, list) or len(info_raw) != len(leaves):
        raise ProtocolError(f"{where}.info: expected one entry per output")
    info = []
    for i, entry in enumerate(info_raw):
        if not isinstance(entry, dict) or set(entry) != set(_INFO_FIELDS) or \
                not all(isinstance(entry[k], t) for k, t in _INFO_FIELDS.items()):
            raise ProtocolError(f"{where}.info[{i}]: malformed")
        info.append(LeafInfo(**entry))
    if not isinstance(raw["structure"], str):
        raise ProtocolError(f"{where}.structure: expected a string")
    fp = raw.get("inputs_fp")
    if fp is not None:
        if not isinstance(fp, list) or not all(x is None or (isinstance(x, list) and len(x) == 2 and all(isinstance(v, float) for v in x))
                                               for x in fp):
            raise ProtocolError(f"{where}.inputs_fp: malformed")
        fp = tuple(None if x is None else (x[0], x[1]) for x in fp)
    seed, n, shapes = raw.get("sample_seed"), raw.get("sample_n"), raw.get("shapes")
    if (seed is None) != (n is None) or (seed is None) != (shapes is None):
        raise ProtocolError(f"{where}: a sample needs its seed, its size and the outputs' shapes")
    if seed is not None:
        if type(seed) is not int or type(n) is not int or n <= 0 or not isinstance(shapes, list) or len(shapes) != len(leaves) \
                or not all(s is None or (isinstance(s, list) and all(type(d) is int and d >= 0 for d in s)) for s in shapes):
            raise ProtocolError(f"{where}: malformed sample")
        shapes = tuple(None if s is None else tuple(s) for s in shapes)
    return CallRecord(leaves=leaves, info=tuple(info), structure=raw["structure"], sample_seed=seed, sample_n=n, shapes=shapes,
                      inputs=_tensors(raw.get("inputs"), f"{where}.inputs"), inputs_fp=fp,
                      out64=_tensors(raw.get("out64"), f"{where}.out64"), previous=_tensors(raw.get("previous"), f"{where}.previous"))
