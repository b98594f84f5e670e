#!/usr/bin/env bash
# The one GPU check (issue 16 §5), prepared to run in a single call (≤ 10 minutes on an H200) on a
# machine with an NVIDIA GPU that has jax (CUDA), flax, optax, orbax and numpy but maybe not dlib,
# Textual or rich (the device machine):
#     bash benchmarks/gpu.sh            # writes $OUT/train_PRESET.json, convert_*.json, bench_gpu.txt
# For original, hq128 and hq256 (bf16 compute, fp32 weights): `--batch auto` (core.train.plan: the
# largest power of two whose compiled plan fits the device with a 10 % margin), `facepair bench
# train`'s step timed there (core.bench.report), the plan's total beside the measured peak device
# memory (each preset in its own process, so each peak is its own), then a short conversion
# benchmark (the full one with dlib; the model's swap stage alone without). benchmarks/gpu_check.py
# does each part. A smoke test anywhere (tests/test_plan.py runs it with dlib and Textual hidden):
#     PRESETS="tiny" MEMORY=28MB STEPS=2 REPEATS=1 CONVERT=tiny bash benchmarks/gpu.sh
set -euo pipefail
OUT=${OUT:-/tmp/facepair-gpu}
PY=${PYTHON:-python}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(dirname "$HERE")"
export BATCH=${BATCH:-auto} STEPS=${STEPS:-20} REPEATS=${REPEATS:-5}
t0=$(date +%s)
{
  date -u +"%Y-%m-%dT%H:%M:%SZ  bash benchmarks/gpu.sh (BATCH=$BATCH STEPS=$STEPS REPEATS=$REPEATS)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
} | tee "$OUT/bench_gpu.txt"
for preset in ${PRESETS:-original hq128 hq256}; do
  "$PY" "$HERE/gpu_check.py" train "$preset" "$OUT" 2>&1 | tee -a "$OUT/bench_gpu.txt"
done
"$PY" "$HERE/gpu_check.py" convert "${CONVERT:-original}" "$OUT" 2>&1 | tee -a "$OUT/bench_gpu.txt"
"$PY" "$HERE/gpu_check.py" report "$OUT" | tee -a "$OUT/bench_gpu.txt"
echo "total $(( $(date +%s) - t0 )) s" | tee -a "$OUT/bench_gpu.txt"
