"""Runs the judge's CUDA cases one by one and prints one JSON line per verdict as it comes
(for the device machine, where a run may be cut off)."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cudal1.judge import JudgeConfig, evaluate  # noqa: E402
from judge_helpers import make_task  # noqa: E402
import test_judge_cuda as T  # noqa: E402

CASES = {
    "custom_kernel": (T.ELEMENTWISE, T.CUDA_KERNEL % "_ext.relu2p1(x.contiguous())"),
    "triton": (T.ELEMENTWISE, None),
    "cuda_graph": (T.ELEMENTWISE, None),
}


def source_of(test_fn) -> str:
    import inspect

    src = inspect.getsource(test_fn)
    body = src.split('"""', 2)[1] if src.count('"""') >= 2 else ""
    return textwrap.dedent(body)


def main() -> None:
    cases = dict(CASES)
    cases["triton"] = (T.ELEMENTWISE, source_of(T.test_triton_kernel_accepted))
    cases["cuda_graph"] = (T.ELEMENTWISE, source_of(T.test_cuda_graph_wrapper_accepted))
    only = sys.argv[1].split(",") if len(sys.argv) > 1 else list(cases)
    for name in only:
        task_src, cand = cases[name]
        t0 = time.monotonic()
        v = evaluate(make_task(task_src), cand, device="cuda", config=JudgeConfig(trials=5, timed_calls=30, rounds=3))
        rec = v.to_record()
        rec["details"] = {k: rec["details"].get(k) for k in ("stage_s", "error", "remeasured", "sandbox_applied", "candidate_spread")}
        print(json.dumps({"case": name, "wall_s": round(time.monotonic() - t0, 1), **rec}), flush=True)


if __name__ == "__main__":
    main()
