#!/usr/bin/env bash
# GPU check of the bench layer (run by hand on a GPU machine; results go to docs/validation.md).
# Benches a few tasks at full size with all four baselines and two honest candidates, then the
# same again on every visible GPU (--gpus), writes the HTML report, and compares the two runs.
# Usage: benchmarks/gpu_bench_smoke.sh [OUT_DIR]
set -euo pipefail
OUT=${1:-${OUT:-/tmp/cudal1-bench-gpu}}
mkdir -p "$OUT/cands/level1"
export CUDAL1_DB="$OUT/bench.db"
cat > "$OUT/cands/level1/5_Diag_Matmul.py" <<'PY'
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, B):
        return a.unsqueeze(1) * B
PY
cat > "$OUT/cands/level1/19_Swish.py" <<'PY'
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.nn.functional.silu(x)
PY
TASKS="level1/5_*,level1/19_*,level1/13_*,level2/1_*,level3/1_*,level3/6_*"
BASELINES=eager,compile,compile-reduce-overhead,cuda-graph
nvidia-smi --query-gpu=name --format=csv,noheader
time cudal1 bench --candidates "$OUT/cands" --tasks "$TASKS" --baselines "$BASELINES" --device cuda | tee "$OUT/bench.txt"
RUN1=$(cudal1 report --list --json | python -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
cudal1 report "$RUN1" --html "$OUT/report.html" --json > "$OUT/report.json"
NGPU=$(nvidia-smi -L | wc -l)
if [ "$NGPU" -gt 1 ]; then
  time cudal1 bench --candidates "$OUT/cands" --tasks "$TASKS" --baselines "$BASELINES" --gpus "$NGPU" --fresh | tee "$OUT/bench_gpus.txt"
  RUN2=$(cudal1 report --list --json | python -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  cudal1 report --compare "$RUN1" "$RUN2" | tee "$OUT/compare.txt"
fi
# every baseline should be accepted; eager should read ~1.0x
python - "$OUT/report.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = [(t["task_id"], k, b["verdict"]) for t in d["tasks"] for k, b in t["baselines"].items() if b["verdict"] != "accepted"]
eager = [b["speedup"] for t in d["tasks"] for k, b in t["baselines"].items() if k == "eager" and b["speedup"]]
print("baselines not accepted:", bad or "none")
print("eager speedups (expect ~1.0):", [round(x, 3) for x in eager])
PY
