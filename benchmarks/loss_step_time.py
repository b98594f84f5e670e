"""lite's step time with the old loss and with the face loss (dssim 0.5, face-weighted, eyes/mouth 2), alternating."""
import dataclasses, time, json
from core.jaxmodels import xla_cpu
xla_cpu.configure()
import jax, jax.numpy as jnp, numpy as np
from core.jaxmodels.presets import get_preset
from core.jaxmodels.step import FaceData, Trainer
base = get_preset("lite")
face = dataclasses.replace(base, loss=dataclasses.replace(base.loss, dssim=0.5, mask_weighted=True, eye_multiplier=2.0, mouth_multiplier=2.0))
rng = np.random.default_rng(0)
host = FaceData(*(rng.integers(0, 255, (200, 64, 64, 3), dtype=np.uint8) for _ in range(4)))
runs = {}
for name, p in (("l1", base), ("face", face)):
    tr = Trainer(p, 16, dtype=jnp.float32, steps_per_call=1)
    data = tr.put_data(host); st = tr.init_state(0)
    for _ in range(3): st, m = tr.train_steps(st, data)
    jax.block_until_ready(st)
    runs[name] = (tr, data, st)
times = {"l1": [], "face": []}
for r in range(5):
    for name in ("l1", "face"):
        tr, data, st = runs[name]
        t = time.perf_counter()
        for _ in range(10): st, m = tr.train_steps(st, data)
        jax.block_until_ready(st)
        times[name].append((time.perf_counter() - t) / 10 * 1e3)
        runs[name] = (tr, data, st)
print(json.dumps({k: round(float(np.median(v)), 1) for k, v in times.items()}))
