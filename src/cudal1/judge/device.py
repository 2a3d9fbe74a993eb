"""Choosing and describing the device a program runs on."""

from __future__ import annotations

import re

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``. Validates the spelling."""
    import torch

    if not DEVICE_RE.match(device or ""):
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU here (use --device cpu)")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asked for, but only {torch.cuda.device_count()} GPU(s) are visible")
    return device


def device_name(device: str) -> str:
    """A human name for the device: the GPU's name, or the CPU model with its thread count."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    model = "CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model} ({torch.get_num_threads()} threads)"


def free_cores(samples: int = 5, gap_s: float = 0.02) -> int:
    """CPU cores not busy with other work right now: all cores less the processes the kernel
    reports running (``procs_running`` in /proc/stat, fewest over a few samples, not counting
    this one). A judge that spreads its threads over cores another process keeps busy waits at
    every parallel barrier for a descheduled thread (milliseconds); on fewer threads it does not."""
    import os
    import time

    cores = os.cpu_count() or 1
    running = []
    for i in range(samples):
        try:
            with open("/proc/stat") as f:
                running += [int(line.split()[1]) for line in f if line.startswith("procs_running")]
        except (OSError, ValueError, IndexError):
            return cores
        if i + 1 < samples:
            time.sleep(gap_s)
    busy = max(0, min(running) - 1) if running else 0
    return max(1, cores - busy)
