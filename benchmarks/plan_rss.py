#!/usr/bin/env python
"""A plan against reality on the CPU: peak RSS of a short training run (fp32) against `facepair plan`s
total for the same preset, batch and faces. Usage: python benchmarks/plan_rss.py lite 16 1000"""
import json, resource, sys
from core.jaxmodels import xla_cpu
xla_cpu.configure()
import jax, jax.numpy as jnp, numpy as np
from core.jaxmodels.step import FaceData, Trainer
import psutil
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
def cur(): return psutil.Process().memory_info().rss
preset, batch, faces = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
jax.numpy.zeros(1).block_until_ready()
base = rss(); base_cur = cur()
tr = Trainer(preset, batch, dtype=jnp.float32, steps_per_call=1)
r = tr.preset.resolution
rng = np.random.default_rng(0)
host = FaceData(*(rng.integers(0, 255, (faces, r, r, 3), dtype=np.uint8) for _ in range(4)))
data = tr.put_data(host); del host
state = tr.init_state(0)
state, m = tr.train_steps(state, data); jax.block_until_ready(state)
after_compile = cur()
for _ in range(20):
    state, m = tr.train_steps(state, data)
jax.block_until_ready(state)
peak = rss(); end_cur = cur()
from core.train.plan import plan
p = plan(preset, batch, faces=faces, dtype="float32")
print(json.dumps({"preset": preset, "batch": batch, "faces": faces, "rss_after_import": base, "peak_rss": peak,
                  "growth": peak - base, "plan_total": p["total_bytes"], "current_after_compile_minus_before": after_compile - base_cur, "current_end_minus_before": end_cur - base_cur}))
