"""Resume points: trainer checkpoints, and a state JSON for the stages that loop outside a trainer.

The state file is replaced atomically (write a temporary file, then rename), so a run killed
at any moment leaves either the old or the new state, never half of one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

_CKPT_RE = re.compile(r"^checkpoint-(\d+)$")


def latest_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest ``checkpoint-N`` folder a transformers Trainer wrote in ``output_dir``."""
    d = Path(output_dir)
    if not d.is_dir():
        return None
    found = []
    for p in d.iterdir():
        m = _CKPT_RE.match(p.name)
        if m and p.is_dir() and (p / "trainer_state.json").exists():
            found.append((int(m.group(1)), p))
    return str(max(found)[1]) if found else None


def load_state(path: str | os.PathLike, default: dict | None = None) -> dict:
    p = Path(path)
    if not p.exists():
        return dict(default or {})
    with open(p) as f:
        return json.load(f)


def save_state(path: str | os.PathLike, state: dict) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(state, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def append_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    """Append records and flush to disk (a killed run keeps every line written before)."""
    if not records:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Records of a JSONL file; a torn last line (a run killed mid-write) is skipped."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def checkpoint_step(checkpoint: str | os.PathLike | None) -> int:
    """The optimizer step a trainer checkpoint was written at (0 when there is none)."""
    if not checkpoint:
        return 0
    p = Path(checkpoint) / "trainer_state.json"
    if not p.exists():
        return 0
    with open(p) as f:
        return int(json.load(f).get("global_step", 0))
