"""Each runtime check of the judge, with a candidate that only that check catches.

Removing a check makes its test fail: the candidates here are otherwise fast and (for the
checked calls) correct.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from cudal1.judge.evaluate import Judge
from cudal1.judge.session import Evidence, Timing, untimed_work
from cudal1.judge import JudgeConfig

from judge_helpers import DROPOUT_TASK, LINEAR_TASK, POSITIVE_RELU_TASK, RELU_TASK, judge, make_task

GOOD = """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.clamp_min(x, 0.0) * 2.0
"""


def ids(v):
    return set(v.finding_ids())


def test_correct_candidate_is_accepted_with_all_fields(judge_cache):
    v = judge(RELU_TASK, GOOD, judge_cache)
    assert v.verdict == "accepted", v.to_record()
    assert v.correct and v.speedup and v.speedup > 0
    assert v.ref_ms > 0 and v.candidate_ms > 0
    assert abs(v.speedup - v.ref_ms / v.candidate_ms) <= 1e-3 * v.speedup + 1e-4  # speedup has 4 decimals
    assert v.max_abs_error == 0.0
    assert set(v.to_json()) == {"verdict", "correct", "speedup", "ref_ms", "candidate_ms", "max_abs_error", "findings",
                                "device", "torch", "kernels", "build_s", "eval_s", "speedup_ci", "ref_cv", "candidate_cv",
                                "floor_ms"}
    lo, hi = v.speedup_ci
    assert lo <= v.speedup <= hi and v.ref_cv >= 0 and v.candidate_cv >= 0 and 0 < v.floor_ms < v.candidate_ms
    assert v.details.sandbox in ("strict", "basic", "off")
    assert len(v.details.candidate_times_ms) >= 6


def test_wrong_values_are_incorrect(judge_cache):
    v = judge(RELU_TASK, "import torch, torch.nn as nn\nclass ModelNew(nn.Module):\n    def forward(self, x):\n        return x * 2.0\n", judge_cache)
    assert v.verdict == "incorrect" and "output-mismatch" in ids(v) and v.speedup is None


def test_wrong_shape_and_dtype(judge_cache):
    v = judge(RELU_TASK, "import torch, torch.nn as nn\nclass ModelNew(nn.Module):\n    def forward(self, x):\n        return torch.relu(x[:10]) * 2\n", judge_cache)
    assert v.verdict == "incorrect" and "output-shape-mismatch" in ids(v)
    v = judge(RELU_TASK, "import torch, torch.nn as nn\nclass ModelNew(nn.Module):\n    def forward(self, x):\n        return (torch.relu(x) * 2).double()\n", judge_cache)
    assert v.verdict == "incorrect" and "output-dtype-mismatch" in ids(v)


def test_nan_where_reference_finite_fails(judge_cache):
    v = judge(RELU_TASK, """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        y = torch.relu(x) * 2.0
        y[0, 0] = float('nan')
        return y
""", judge_cache)
    assert v.verdict == "incorrect" and "nonfinite-output" in ids(v)


def test_tensor_subclass_output_rejected(judge_cache):
    v = judge(RELU_TASK, """
import torch, torch.nn as nn
class Lazy(torch.Tensor):
    pass
class ModelNew(nn.Module):
    def forward(self, x):
        return (torch.relu(x) * 2.0).as_subclass(Lazy)
""", judge_cache)
    assert v.verdict == "rejected" and "output-not-tensor" in ids(v)


def test_input_mutation_rejected(judge_cache):
    v = judge(RELU_TASK, """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        return x.relu_().mul_(2.0)
""", judge_cache)
    assert v.verdict == "rejected" and "input-mutated" in ids(v)


def test_distribution_specialized_rejected(judge_cache):
    v = judge(POSITIVE_RELU_TASK, """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        return x.clone()
""", judge_cache)
    assert v.verdict == "rejected" and "input-specialized" in ids(v)


def test_call_counting_cache_caught_on_timed_calls(judge_cache):
    # Honest for the first calls (correctness trials), then returns a stored result.
    v = judge(RELU_TASK, """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.last = None
    def forward(self, x):
        self.calls += 1
        if self.calls <= 8 or self.last is None:
            self.last = torch.relu(x) * 2.0
        return self.last.clone()
""", judge_cache)
    assert v.verdict == "rejected" and "timed-output-mismatch" in ids(v)


def test_pointer_keyed_cache_caught(judge_cache):
    v = judge(RELU_TASK, """
import torch, torch.nn as nn
_cache = {}
class ModelNew(nn.Module):
    def forward(self, x):
        key = (x.data_ptr(), tuple(x.shape))
        if key not in _cache:
            _cache[key] = torch.relu(x) * 2.0
        return _cache[key].clone()
""", judge_cache)
    assert v.verdict in ("rejected", "incorrect")
    # Every trial after the first writes new values into the previous trial's input buffers, so
    # the stale cached result is caught at run time on every run, not only when malloc reuses memory.
    assert "output-mismatch" in ids(v)


def test_timer_patching_rejected(judge_cache):
    v = judge(RELU_TASK, """
import time, torch, torch.nn as nn
_real = time.perf_counter
time.perf_counter = lambda: _real() * 0.0
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0
""", judge_cache)
    assert v.verdict == "rejected" and "timer-tampered" in ids(v)


def test_input_generator_patching_rejected(judge_cache):
    v = judge(RELU_TASK, """
import torch, torch.nn as nn
_randn = torch.randn
torch.randn = lambda *a, **k: _randn(4, 4)
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0
""", judge_cache)
    assert v.verdict == "rejected" and "input-generation-tampered" in ids(v)


def test_reference_module_tampering_rejected(judge_cache):
    v = judge(RELU_TASK, """
import gc, types, torch, torch.nn as nn
for obj in gc.get_objects():
    if isinstance(obj, types.ModuleType) and obj.__name__.startswith("cudal1_reference"):
        obj.N = 4
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0
""", judge_cache)
    assert v.verdict == "rejected" and "reference-module-tampered" in ids(v)


def test_own_sizes_and_get_inputs_have_no_effect(judge_cache):
    v = judge(RELU_TASK, """
import torch, torch.nn as nn
N = 2
def get_inputs():
    return [torch.randn(N, N)]
class ModelNew(nn.Module):
    def forward(self, x):
        assert x.shape == (256, 256), x.shape
        return torch.relu(x) * 2.0
""", judge_cache)
    assert v.verdict == "accepted", v.to_record()


def test_leftover_thread_rejected(judge_cache):
    v = judge(RELU_TASK, """
import threading, time, torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        return torch.relu(x) * 2.0
""", judge_cache)
    assert v.verdict == "rejected" and "leftover-threads" in ids(v)


def test_leftover_child_process_rejected_and_killed(judge_cache, tmp_path):
    v = judge(RELU_TASK, """
import subprocess, torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        subprocess.Popen(["sleep", "61.5"])
        return torch.relu(x) * 2.0
""", judge_cache)
    assert v.verdict == "rejected" and "leftover-processes" in ids(v)
    out = os.popen("pgrep -f '^sleep 61.5$' | wc -l").read().strip()
    assert out == "0"


def test_global_state_change_is_reported_not_shared(judge_cache):
    v = judge(RELU_TASK, """
import torch, torch.nn as nn
torch.set_num_threads(1)
torch.backends.cudnn.benchmark = True
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0
""", judge_cache)
    assert v.verdict == "accepted"
    assert "global-state-changed" in ids(v)
    assert [f for f in v.findings if f.id == "global-state-changed"][0].severity == "warn"


def test_exit_in_forward_gives_runtime_error(judge_cache):
    v = judge(RELU_TASK, "import sys, torch, torch.nn as nn\nclass ModelNew(nn.Module):\n    def forward(self, x):\n        sys.exit(3)\n", judge_cache)
    assert v.verdict == "runtime_error" and "candidate-exit" in ids(v)


def test_hard_crash_gives_runtime_error_and_next_eval_is_fine(judge_cache):
    v = judge(RELU_TASK, "import os, torch, torch.nn as nn\nclass ModelNew(nn.Module):\n    def forward(self, x):\n        os._exit(9)\n", judge_cache)
    assert v.verdict == "runtime_error" and "crash" in ids(v)
    v = judge(RELU_TASK, "import ctypes, torch, torch.nn as nn\nclass ModelNew(nn.Module):\n    def forward(self, x):\n        return ctypes.string_at(0)\n", judge_cache)
    assert v.verdict == "runtime_error" and "crash" in ids(v)
    assert judge(RELU_TASK, GOOD, judge_cache).verdict == "accepted"


def test_hang_gives_timeout(judge_cache):
    v = judge(RELU_TASK, """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.n = 0
    def forward(self, x):
        self.n += 1
        while self.n > 3:
            pass
        return torch.relu(x) * 2.0
""", judge_cache, run_timeout_s=8)
    assert v.verdict == "timeout" and "timeout" in ids(v)


def test_build_errors(judge_cache):
    v = judge(RELU_TASK, "import torch\nclass ModelNew(torch.nn.Module:\n    pass\n", judge_cache)
    assert v.verdict == "build_error" and "build-failed" in ids(v) and "SyntaxError" in v.details.error
    v = judge(RELU_TASK, "import torch\nclass Model(torch.nn.Module):\n    pass\n", judge_cache)
    assert v.verdict == "build_error" and "missing-modelnew" in ids(v)
    v = judge(LINEAR_TASK, "import torch\nclass ModelNew(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n    def forward(self, x):\n        return x\n", judge_cache)
    assert v.verdict == "build_error" and "signature-mismatch" in ids(v)


def test_weights_match_when_parameters_created_in_same_order(judge_cache):
    v = judge(LINEAR_TASK, """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.lin = nn.Linear(i, o)
    def forward(self, x):
        return torch.tanh(torch.addmm(self.lin.bias, x, self.lin.weight.t()))
""", judge_cache)
    assert v.verdict == "accepted", v.to_record()


def test_stochastic_reference_detected_and_compared_under_same_rng(judge_cache):
    v = judge(DROPOUT_TASK, """
import torch, torch.nn as nn, torch.nn.functional as F
class ModelNew(nn.Module):
    def forward(self, x):
        return F.dropout(x, 0.5, True) + 1.0
""", judge_cache)
    assert v.verdict == "accepted", v.to_record()
    assert "stochastic-reference" in ids(v)
    v = judge(DROPOUT_TASK, "import torch, torch.nn as nn\nclass ModelNew(nn.Module):\n    def forward(self, x):\n        return x + 1.0\n", judge_cache)
    assert v.verdict == "incorrect"


def test_secrets_are_not_visible(judge_cache, monkeypatch):
    monkeypatch.setenv("CUDAL1_LLM_API_KEY", "sk-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    v = judge(RELU_TASK, """
import os, torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        leaked = any(k in os.environ for k in ("CUDAL1_LLM_API_KEY", "AWS_SECRET_ACCESS_KEY"))
        return torch.relu(x) * (3.0 if leaked else 2.0)
""", judge_cache)
    # Correct outputs prove the candidate found no secret; reading the environment is still a finding.
    assert v.correct, v.to_record()
    assert v.verdict == "rejected" and "env-read" in ids(v)


def _strict_available():
    from cudal1.judge.sandbox import bwrap_works

    return bwrap_works()


@pytest.mark.skipif(not _strict_available(), reason="bubblewrap not usable here")
def test_strict_sandbox_blocks_writes_outside(judge_cache):
    target = Path(__file__).parent / "escaped-by-candidate.txt"
    v = judge(RELU_TASK, f"""
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        open({str(target)!r}, "w").write("escaped")
        return torch.relu(x) * 2.0
""", judge_cache, sandbox="strict")
    assert not target.exists()
    assert v.verdict == "runtime_error" and "sandbox-denied" in ids(v)
    assert v.details.sandbox == "strict"


@pytest.mark.skipif(not _strict_available(), reason="bubblewrap not usable here")
def test_strict_sandbox_has_no_network(judge_cache):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    v = judge(RELU_TASK, f"""
import socket, torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leak")
        return torch.relu(x) * 2.0
""", judge_cache, sandbox="strict")
    with pytest.raises(socket.timeout):
        server.accept()  # nothing ever reached the judge's host
    server.close()
    assert v.verdict == "runtime_error" and "network-access" in ids(v)


def test_remeasurement_runs_in_fresh_processes(judge_cache):
    v = judge(RELU_TASK, GOOD, judge_cache, remeasure_threshold_l1=0.0)
    assert v.verdict == "accepted"
    assert v.details.remeasured["speedup"] > 0


def test_remeasure_disagreement_keeps_the_lower_figure(judge_cache):
    class Scripted(Judge):
        """The real re-measurement rule over scripted timings (re-measured at 2x)."""

        def _measure(self, task, source, run, device):
            return Timing(4.0, 2.0)

    j = Scripted("cpu", JudgeConfig.quick(cache_dir=judge_cache))
    run = Evidence()
    kept = j._remeasure(make_task(RELU_TASK), GOOD, run, Timing(4.0, 1.0))
    assert kept.ref_ms / kept.cand_ms == 2.0 and kept.cand_ms == 2.0
    assert "remeasure-disagrees" in [f.id for f in run.findings]
    run = Evidence()
    kept = j._remeasure(make_task(RELU_TASK), GOOD, run, Timing(4.0, 1.9))
    assert kept.ref_ms / kept.cand_ms == pytest.approx(4.0 / 2.0) and "remeasure-disagrees" not in [f.id for f in run.findings]


def test_reference_runs_live_and_leaves_nothing_in_the_cache(tmp_path):
    # Seeds, inputs and expected outputs exist only while an evaluation runs, in the parent's
    # memory and the reference's private folder (deleted): nothing a later candidate could read.
    cache = str(tmp_path)
    v1 = judge(RELU_TASK, GOOD, cache, remeasure_threshold_l1=1e9)
    v2 = judge(RELU_TASK, GOOD, cache, remeasure_threshold_l1=1e9)
    assert v1.verdict == v2.verdict == "accepted"
    assert v1.details.ref_times_ms != v2.details.ref_times_ms  # timed again, in this run
    # Kept: builds, pace.json (the machine's best pace) and output_bytes.json (each task's output
    # size): nothing about any evaluation's seeds, inputs or values.
    kept = ("pace.json", "output_bytes.json")
    leftovers = [p for p in Path(cache).rglob("*") if p.is_file() and "builds" not in p.parts and p.name not in kept]
    assert not leftovers, leftovers
    sizes = json.loads((Path(cache) / "output_bytes.json").read_text())
    assert list(sizes.values()) == [256 * 256 * 4]  # RELU_TASK's float32 output, one number


def test_untimed_work_is_measured_against_the_reference_overhead():
    # one slow round (passing load) on either side is not evidence; every round slower is
    allowed, message = untimed_work({"reference_ms": [50.0, 100.0], "candidate_ms": [60.0, 400.0], "calls": 10}, "cpu")
    assert message is None and allowed > 150.0
    _, message = untimed_work({"reference_ms": [50.0, 60.0], "candidate_ms": [400.0, 390.0], "calls": 10}, "cpu")
    assert message and "not timed" in message
    # with more rounds, one spike of load in a reference round does not lift the bar (a forged
    # clock hiding 140 ms per round is still seen)
    _, message = untimed_work({"reference_ms": [10.0, 10.0, 10.0, 200.0], "candidate_ms": [150.0] * 4, "calls": 40}, "cpu")
    assert message and "not timed" in message


EXACT_COPY = """
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.relu(x) * 2.0
"""


def test_an_exact_copy_is_not_significantly_faster(judge_cache):
    v = judge(RELU_TASK, EXACT_COPY, judge_cache, remeasure_threshold_l1=1e9)
    assert v.verdict == "accepted" and v.speedup_ci[0] <= 1.0 <= v.speedup_ci[1], v.to_record()
    assert "speedup-not-significant" in ids(v) and not v.significant


def test_verdict_json_round_trip(judge_cache):
    from cudal1.judge import Verdict

    v = judge(RELU_TASK, GOOD, judge_cache)
    again = Verdict.loads(v.dumps())
    assert again == v and json.loads(v.dumps())["details"]["sandbox"] == v.details.sandbox


@pytest.mark.skipif(not _strict_available(), reason="bubblewrap not usable here")
def test_strict_sandbox_hides_the_reference_cache(judge_cache):
    # Expected outputs and seeds live in the judge's cache folder: the candidate sees it empty.
    v = judge(RELU_TASK, f"""
import os, torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        seen = os.path.isdir(os.path.join({judge_cache!r}, "reference")) and os.listdir(os.path.join({judge_cache!r}, "reference"))
        return torch.relu(x) * (3.0 if seen else 2.0)
""", judge_cache, sandbox="strict")
    assert v.correct, v.to_record()


def test_reference_process_tampering_is_caught_and_undone(judge_cache):
    # Without a PID namespace (sandbox off here) a candidate can see the reference's process and
    # renice it; the parent checks priority and affinity before each reference round.
    v = judge(RELU_TASK, """
import os, torch, torch.nn as nn
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        except OSError:
            continue
        if b"reference" in args:
            os.setpriority(os.PRIO_PROCESS, int(pid), 19)
class ModelNew(nn.Module):
    def forward(self, x):
        return torch.clamp_min(x, 0.0) * 2.0
""", judge_cache, sandbox="off")
    assert v.verdict == "rejected" and "reference-process-tampered" in ids(v), v.to_record()
