#!/usr/bin/env bash
# The first GPU run, in one command from the repository root, on a machine with torch but no package registry:
# install the carried wheels (wheels/: lpips, pytorch-msssim) and this checkout without any index, then run
# benchmarks/gpu_check.py under its budget. Everything it leaves is in $OUT: pip.log, gpu_check.log,
# gpu_check.json (rewritten after every row) and results/gpu_check.json (the record for docs/results.md).
#   OUT=DIR BUDGET_S=420 DEVICE=cuda PYTHON=python [ONLY=sections] bash benchmarks/gpu_run.sh
set -uo pipefail
OUT=${OUT:-gpu_run_out}
BUDGET_S=${BUDGET_S:-420}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python}
mkdir -p "$OUT"
shopt -s nullglob
wheels=(wheels/*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  echo "gpu_run.sh: wheels/ holds no .whl files; copy them there before the run (docs/gpu.md), then run again"
  exit 2
fi
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || echo "gpu_run.sh: no nvidia-smi here" >"$OUT/nvidia-smi.txt"
if ! "$PYTHON" -m pip install --no-index --no-deps "${wheels[@]}" >"$OUT/pip.log" 2>&1; then
  echo "gpu_run.sh: installing ${wheels[*]} failed; see $OUT/pip.log"
  exit 2
fi
if ! "$PYTHON" -m pip install --no-index --no-deps --no-build-isolation -e . >>"$OUT/pip.log" 2>&1; then
  echo "gpu_run.sh: the editable install of this checkout failed (see $OUT/pip.log); running it from the tree"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" GAN_RETOUCH_RESULTS_DIR="$OUT/results"
timeout -k 10 $((${BUDGET_S%.*} + 60)) "$PYTHON" benchmarks/gpu_check.py --device "$DEVICE" \
  --budget-s "$BUDGET_S" ${ONLY:+--only "$ONLY"} --json "$OUT/gpu_check.json" --out "$OUT/runs" 2>&1 |
  tee "$OUT/gpu_check.log"
status=${PIPESTATUS[0]}
find "$OUT/runs" \( -name '*.pt' -o -name '*.onnx' \) -delete 2>/dev/null  # weights: not worth carrying back
exit "$status"
