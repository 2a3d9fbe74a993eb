"""Seeds and the reference's measurements, cached per (task source, size, device, torch, protocol).

Seeds are drawn at random when an entry is made and live only in the judge's cache folder,
which candidate processes cannot read under the strict sandbox: a candidate cannot tabulate
answers for them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..tasks.contract import Task
from .config import JudgeConfig

PROBES = ("negate", "scale", "normal")
REFERENCE_FORMAT = 3


def cache_root(config: JudgeConfig) -> Path:
    return Path(config.cache_dir or os.environ.get("CUDAL1_CACHE") or Path.home() / ".cache" / "cudal1")


@dataclass
class Seeds:
    init_seed: int
    trials: list[dict]  # {"name", "seed", "fwd_seed", "probe"?, "repeat_check"?}
    rounds: list[list[int]]
    warmup_seed: int
    sample_key: int

    @classmethod
    def fresh(cls, config: JudgeConfig) -> "Seeds":
        r = lambda: secrets.randbits(31)  # noqa: E731
        trials = [{"name": f"t{i}", "seed": r(), "fwd_seed": r(), "repeat_check": i == 0} for i in range(config.trials)]
        if config.robustness_probe:
            trials += [{"name": f"p_{p}", "seed": r(), "fwd_seed": r(), "probe": p} for p in PROBES]
        per_round = -(-config.timed_calls // config.rounds)
        rounds = [[r() for _ in range(per_round)] for _ in range(config.rounds)]
        return cls(init_seed=r(), trials=trials, rounds=rounds, warmup_seed=r(), sample_key=r())


@dataclass
class ReferenceData:
    key: str
    folder: str
    seeds: Seeds
    device_name: str = ""
    torch: str = ""
    created: float = 0.0
    trials: dict = field(default_factory=dict)  # name -> trial record from the worker
    times_ms: list[list[float]] = field(default_factory=list)  # per round
    wall_ms: list[list[float]] = field(default_factory=list)
    samples: dict = field(default_factory=dict)  # round name -> path
    last: dict = field(default_factory=dict)  # round name -> path of the last timed output
    kernels: list = field(default_factory=list)
    pace_ms: float | None = None  # `pace.measure_pace` when the timings were taken
    stochastic: bool = False
    nondeterministic: bool = False
    complete: bool = False

    def save(self):
        meta = asdict(self)
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        tmp = Path(self.folder) / "meta.json.tmp"
        tmp.write_text(json.dumps({"format": REFERENCE_FORMAT, **meta}))
        os.replace(tmp, Path(self.folder) / "meta.json")

    @classmethod
    def load(cls, folder: Path) -> "ReferenceData | None":
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if meta.pop("format", None) != REFERENCE_FORMAT:
            return None
        meta["seeds"] = Seeds(**meta["seeds"])
        return cls(**meta)


def reference_key(task: Task, device_name: str, torch_version: str, config: JudgeConfig, threads: int) -> str:
    parts = [task.source_hash, task.size, device_name, torch_version, f"t{config.trials}", f"n{config.timed_calls}",
             f"r{config.rounds}", f"p{int(config.robustness_probe)}", f"th{threads}"]
    import hashlib

    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def cached_reference(task: Task, device_name: str, torch_version: str, config: JudgeConfig, threads: int) -> ReferenceData:
    """The cached entry when fresh; otherwise a new, empty entry with fresh seeds to be measured."""
    key = reference_key(task, device_name, torch_version, config, threads)
    folder = cache_root(config) / "reference" / key
    if config.reference_cache:
        data = ReferenceData.load(folder)
        if data and data.complete and time.time() - data.created < config.reference_cache_max_age_s \
                and all(Path(p).exists() for p in list(data.samples.values()) + [t["path"] for t in data.trials.values()]):
            return data
    # Measured into a private folder and moved into place when complete (see `publish`), so
    # concurrent judges never read a half-written entry.
    private = folder.with_name(f"{key}.{os.getpid()}.{secrets.token_hex(4)}")
    private.mkdir(parents=True, exist_ok=True)
    return ReferenceData(key=key, folder=str(private), seeds=Seeds.fresh(config), device_name=device_name, torch=torch_version)


def publish(data: ReferenceData, config: JudgeConfig) -> None:
    """Mark an entry complete and make it the cached one (or drop it when caching is off)."""
    data.complete = True
    data.created = time.time()
    final = cache_root(config) / "reference" / data.key
    if not config.reference_cache:
        return
    old = final.with_name(final.name + f".old.{secrets.token_hex(4)}")
    if final.exists():
        try:
            os.replace(final, old)
        except OSError:
            pass
    src = Path(data.folder)
    remap = lambda p: str(final / Path(p).name)  # noqa: E731
    data.trials = {k: {**v, "path": remap(v["path"])} for k, v in data.trials.items()}
    data.samples = {k: remap(v) for k, v in data.samples.items()}
    data.last = {k: remap(v) for k, v in data.last.items()}
    data.folder = str(final)
    (src / "meta.json").write_text("{}")
    try:
        os.replace(src, final)
        data.save()
    except OSError:
        shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
