"""All static detectors, registered by name in `DETECTORS` (patterns.yaml's ``detector``).

Each detector is ``(tree, source, ctx) -> Iterable[(lineno, message)]``; they are grouped by
concern: ``detectors_python`` (streams, subclasses, fallbacks, ...), ``detectors_caching``
(caches and call counters), ``detectors_system`` (processes, threads, files, network,
environment, timers, interpreter internals, global state), ``detectors_names`` (names and
code built at run time, code nested past what the scan follows), ``detectors_dispatch``
(operator and dispatcher overrides) and ``detectors_cuda`` (C++/CUDA sources given to
load_inline, lower precision).
"""

from __future__ import annotations

from . import (  # noqa: F401  (they register)
    detectors_caching, detectors_cuda, detectors_dispatch, detectors_names, detectors_python, detectors_system,
)
from .context import DETECTORS, DetectorFn, ScanContext, strip_c_comments

__all__ = ["DETECTORS", "DetectorFn", "ScanContext", "strip_c_comments"]
