#!/usr/bin/env bash
# Installs cudal1 into the current Python environment.
#   bash scripts/install.sh            core (judge, optimizer, bench, reports)
#   bash scripts/install.sh --test     core + test tools + the extras the tests exercise (LLM, training, Ray)
# PyTorch: an existing installation is kept (a CUDA build on a GPU machine, say). Without one,
# the CPU build torch==2.13.0 is installed: an unpinned torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q "torch==2.13.0"
fi
# Strict sandbox (read-only root, no network) needs bubblewrap; without it the judge uses 'basic'.
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 || echo "note: bubblewrap not installed; the judge will use the basic sandbox"
fi
# Pin the torch that is there, so resolving extras (trl, accelerate, ...) never replaces it.
constraints=$(mktemp)
"$PY" -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > "$constraints"
if [ "${1:-}" = "--test" ]; then
  "$PY" -m pip install -q -c "$constraints" -e ".[test,llm,train,ray]"
else
  "$PY" -m pip install -q -c "$constraints" -e .
fi
rm -f "$constraints"
"$PY" -c "import cudal1, torch; print('cudal1', cudal1.__version__, 'with torch', torch.__version__)"
