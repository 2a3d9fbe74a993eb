"""Training metrics: one JSON line per logged step (metrics.jsonl) and TensorBoard scalars.

`MetricsWriter` is what every stage writes through; `metrics_callback(writer)` turns it into a
transformers `TrainerCallback` so the SFT and GRPO trainers' own logs (loss, learning rate,
reward, KL, tokens) land in the same files as the judge's statistics.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


class MetricsWriter:
    """Appends ``{"step", "time", "stage", **metrics}`` lines to ``DIR/metrics.jsonl``.

    TensorBoard event files go to ``DIR/tensorboard`` when the ``tensorboard`` package is
    installed (``pip install 'cudal1[train]'``); without it only the JSONL is written.
    """

    def __init__(self, out_dir: str | os.PathLike, stage: str, tensorboard: bool = True):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "metrics.jsonl"
        self.stage = stage
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.dir / "tensorboard"))
            except Exception as exc:  # noqa: BLE001 - tensorboard is optional
                log.info("TensorBoard logging off (%s); metrics go to %s only", exc, self.path)

    def write(self, step: int, metrics: dict, prefix: str = "") -> dict:
        clean = {}
        for k, v in metrics.items():
            if isinstance(v, bool):
                v = float(v)
            if isinstance(v, (int, float)) and math.isfinite(v):
                clean[prefix + k] = v
        record = {"step": int(step), "time": round(time.time(), 3), "stage": self.stage, **clean}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in clean.items():
                self._tb.add_scalar(f"{self.stage}/{k}", v, int(step))
            self._tb.flush()
        return record

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | os.PathLike) -> list[dict]:
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def metrics_callback(writer: MetricsWriter, extra: dict | None = None):
    """A transformers TrainerCallback that forwards the trainer's logs to ``writer``.

    ``extra`` (a dict, updated by the caller) is merged into every record, e.g. the
    self-training iteration.
    """
    from transformers import TrainerCallback

    class _MetricsCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                writer.write(state.global_step, {**(extra or {}), **logs})

    return _MetricsCallback()
