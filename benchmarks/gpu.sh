#!/usr/bin/env bash
# The one GPU check, prepared to run in a single call on a machine with an NVIDIA GPU that has jax
# (CUDA), flax, optax, orbax and numpy but maybe not dlib, Textual or rich (the device machine):
#     bash benchmarks/gpu.sh            # writes $OUT/bench_gpu.json and $OUT/bench_gpu.txt
# It times facepair's real training step for `original` and `hq128` (bf16 compute, fp32 weights,
# batch 64 per side) with the machine header (GPU, versions), via core.bench.report, not the CLI,
# and prints the compiled plan (core.train.plan) of the same presets and batch beside it.
# A smoke test anywhere: PRESETS="tiny" BATCH=4 STEPS=2 REPEATS=1 bash benchmarks/gpu.sh
set -euo pipefail
OUT=${OUT:-/tmp/facepair-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi") | tee "$OUT/bench_gpu.txt"
${PYTHON:-python} - "$OUT" "${PRESETS:-original hq128}" "${BATCH:-64}" "${STEPS:-20}" "${REPEATS:-5}" <<'PY' 2>&1 | tee -a "$OUT/bench_gpu.txt"
import json, sys, time
from pathlib import Path
from core.bench import report as bench
from core.train import plan as planner

out, presets = Path(sys.argv[1]), tuple(sys.argv[2].split())
batch, steps, repeats = (int(x) for x in sys.argv[3:6])
t0 = time.time()
res = bench.run(["train"], {"train": {"presets": presets, "batch": batch, "steps": steps, "repeats": repeats}},
                progress=lambda m: print(m, flush=True))
(out / "bench_gpu.json").write_text(json.dumps(res, indent=2, default=str))
print(bench.text_report(res))
# The compiled plan beside the measurement: XLA:GPU's own memory and FLOPs for the same step.
plans = [planner.plan(p, batch, faces=1000, dtype="bfloat16") for p in presets]
(out / "plan_gpu.json").write_text(json.dumps(plans, indent=2, default=str))
print(planner.markdown(plans))
print(f"total {time.time() - t0:.0f} s")
PY
