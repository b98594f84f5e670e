"""lite's step time without and with the moving average of the weights (ema_decay 0.998), alternating in one process."""
import dataclasses, time, json
from core.jaxmodels import xla_cpu
xla_cpu.configure()
import jax, jax.numpy as jnp, numpy as np
from core.jaxmodels.presets import get_preset
from core.jaxmodels.step import FaceData, Trainer
base = get_preset("lite")
rng = np.random.default_rng(0)
host = FaceData(*(rng.integers(0, 255, (200, 64, 64, 3), dtype=np.uint8) for _ in range(4)))
runs = {}
for name, p in (("no ema", base), ("ema", dataclasses.replace(base, ema_decay=0.998))):
    tr = Trainer(p, 16, dtype=jnp.float32, steps_per_call=1)
    data = tr.put_data(host); st = tr.init_state(0)
    for _ in range(3): st, m = tr.train_steps(st, data)
    jax.block_until_ready(st)
    runs[name] = (tr, data, st)
times = {k: [] for k in runs}
for r in range(5):
    for name in runs:
        tr, data, st = runs[name]
        t = time.perf_counter()
        for _ in range(10): st, m = tr.train_steps(st, data)
        jax.block_until_ready(st)
        times[name].append((time.perf_counter() - t) / 10 * 1e3)
        runs[name] = (tr, data, st)
print(json.dumps({k: round(float(np.median(v)), 1) for k, v in times.items()} | {"all_ms": times}))
