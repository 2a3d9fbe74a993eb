"""`JudgeConfig`: every knob of the judge, each with its help text (drives CLI and docs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..config_fields import check_choices, from_dict
from ..config_fields import setting as _f


@dataclass(frozen=True)
class JudgeConfig:
    # --- correctness ---------------------------------------------------------------------
    trials: int = _f(5, "Correctness trials, each with fresh seeds and inputs (at least 5).")
    atol: float = _f(1e-2, "Absolute tolerance (CUDA-L1 and KernelBench v0 used 1e-2).", flag="--tolerance")
    rtol: float = _f(1e-2, "Relative tolerance.", flag="--tolerance")
    strict_tol: float = _f(1e-4, "Tighter tolerance also checked and reported (a warn finding when it fails).")
    robustness_probe: bool = _f(True, "Also check other value distributions of the same shapes (negative, large).", flag="--probe")
    # --- timing --------------------------------------------------------------------------
    timed_calls: int = _f(30, "Timed calls per program, spread over `rounds` alternating rounds (at least 30).")
    rounds: int = _f(3, "Rounds alternating reference and candidate timing.")
    warmup: int = _f(3, "Untimed warm-up calls per program before timing.")
    timed_sample: int = _f(65536, "Values per output checked in a timed call whose outputs exceed 16 MB, at positions the candidate's process draws after the call; about one such call in ten (drawn the same way) is checked whole. 0: every value of every timed call.")
    remeasure_threshold_l1: float = _f(1.5, "Speedups above this on level-1 tasks are re-measured in a fresh process.")
    remeasure_threshold: float = _f(3.0, "Speedups above this on other tasks are re-measured in a fresh process.")
    remeasure_best_factor: float = _f(2.0, "Also re-measure speedups above this multiple of the task's best so far.")
    remeasure_tolerance: float = _f(0.10, "Relative disagreement between measurements that becomes a finding.")
    # --- isolation -------------------------------------------------------------------------
    build_timeout_s: float = _f(600.0, "Wall-clock limit for building a candidate (load_inline, Triton), seconds.",
                               flag="--build-timeout", metavar="S")
    run_timeout_s: float = _f(120.0, "Wall-clock limit for checking and timing a candidate, seconds.",
                             flag="--run-timeout", metavar="S")
    sandbox: str = _f("auto", "Sandbox level: strict (namespaces/bubblewrap), basic (rlimits, scrubbed env, temp dir), off, or auto (strongest available).",
                      choices=("auto", "strict", "basic", "off"))
    memory_limit_gb: float = _f(16.0, "Host memory limit (address space is not limited: CUDA maps large ranges).")
    cpu_time_limit_s: float = _f(900.0, "CPU-time limit of the candidate process.")
    max_processes: int = _f(512, "Process/thread count limit (RLIMIT_NPROC) in the sandbox.")
    file_size_limit_mb: float = _f(16384.0, "Largest file the candidate's process may write (RLIMIT_FSIZE); its "
                                    "harness writes each trial's outputs and inputs to one file, 2 GiB for a task with a "
                                    "1 GiB input and output.")
    gpu_memory_fraction: float = _f(0.9, "Share of GPU memory the candidate process may allocate through torch.")
    threads: int = _f(0, "CPU threads for torch in both reference and candidate processes; 0 = the cores not busy with other work when the judge starts (all cores on an idle machine; all cores when judging on a GPU).")
    prestart_processes: str = _f("auto", "In a batch (evaluate_many), start each next candidate's process while the current one is judged (it must be idle before any timing): on, off, or auto (on with 4 or more CPU cores; on fewer, the early start competes with the judged work).",
                                 choices=("auto", "on", "off"))
    # --- caching -------------------------------------------------------------------------
    cache_dir: str = _f("", "Where builds are cached (and the reference's private folders live while an evaluation runs); '' = ~/.cache/cudal1.")
    profile_kernels: bool = _f(True, "On CUDA, list the kernels the candidate launched (torch.profiler) when it declares CUDA or Triton kernels of its own (the ghost-kernel check needs the list); every candidate with profile_every_candidate.")
    profile_every_candidate: bool = _f(False, "Also profile candidates that declare no kernel of their own (their kernel list in the verdict; cudal1 eval does). Each such process loads CUPTI while it starts: 4.7 s of start-up on an H200 host, which a batch waits for.")
    best_speedup: float | None = _f(None, "Best speedup seen so far for this task (for re-measurement).")
    allow_lower_precision: bool = _f(False, "Accept candidates that compute in TF32/fp16/bf16 (still reported as warn).")

    def __post_init__(self):
        if self.trials < 1:
            raise ValueError("trials must be at least 1 (5 or more recommended)")
        if self.timed_calls < 1 or self.rounds < 1:
            raise ValueError("timed_calls and rounds must be positive")
        check_choices(self)
        if self.atol < 0 or self.rtol < 0:
            raise ValueError("tolerances must be non-negative")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "JudgeConfig":
        """A stored config: keys of fields that no longer exist are dropped (old rows still load)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_dict(cls, d: dict, prefix: str = "") -> "JudgeConfig":
        """User input (YAML, overrides): unknown keys and wrong types are errors that say what to write."""
        return from_dict(cls, d, prefix=prefix)

    @classmethod
    def quick(cls, **overrides) -> "JudgeConfig":
        """Fewer trials and timed calls: for CPU smoke runs and tests."""
        base = dict(trials=2, timed_calls=6, rounds=2, warmup=1)
        base.update(overrides)
        return cls(**base)
