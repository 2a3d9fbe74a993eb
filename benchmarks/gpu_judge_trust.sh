#!/usr/bin/env bash
# GPU validation of the judge's trust checks (docs/validation.md): the CUDA-marked judge tests and
# the whole adversarial corpus (tests/hacks) on one GPU, each under its own time limit, writing
# results as they finish into RESULTS (default /root/judge-trust). Run in the background:
#   setsid nohup bash benchmarks/gpu_judge_trust.sh > /root/judge-trust.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-/root/judge-trust}
mkdir -p "$RESULTS"
export PYTHONPATH=$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}
# bubblewrap for the strict sandbox, carried as a .deb (docs/validation.md)
[ -f .carry/gpu_env.sh ] && . .carry/gpu_env.sh
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
  python3 -c "from cudal1.judge import sandbox; print('sandbox auto ->', sandbox.resolve_level('auto'))"
} > "$RESULTS/machine.txt" 2>&1
step() {  # name, time limit (s), command...
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$RESULTS/$name.log" 2>&1
  echo "$name rc=$? wall_s=$(( $(date +%s) - t0 ))" >> "$RESULTS/steps.txt"
}
step cuda_tests 420 python3 -m pytest -q -rA -p no:cacheprovider tests/test_judge_cuda.py
# The corpus under the strongest sandbox the machine has (strict with the carried bubblewrap).
LEVEL=$(python3 -c "from cudal1.judge import sandbox; print(sandbox.resolve_level('auto'))")
step corpus 900 python3 -m pytest -q -rA -p no:cacheprovider -n ${WORKERS:-4} -k "$LEVEL" tests/test_judge_corpus.py
echo finished >> "$RESULTS/steps.txt"
