"""How a training step's time splits: the full step, the step without augmentation, without the
random warp only, and the model's forward+backward alone (value_and_grad on a ready batch).

    python benchmarks/step_parts.py --preset lite --batch 16 --steps 5 --repeats 5

Measurement only: the variants subclass `Trainer` here (nothing ships without augmentation).
Rounds are interleaved (each variant once per round), the median is reported, with the load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="lite")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import numpy as np

    from core.jaxmodels import augment as aug
    from core.jaxmodels.step import Batch, Trainer, synthetic_faces

    class NoAug(Trainer):
        """Sampling kept, augmentation replaced by a plain uint8 -> float conversion."""

        def _sample(self, state, data, i):
            key = jax.random.fold_in(jax.random.wrap_key_data(state.seed), state.step)
            ka, kb = jax.random.split(key)
            out = []
            for faces, maps, k in ((data.faces_a, data.maps_a, ka), (data.faces_b, data.maps_b, kb)):
                idx = jax.random.randint(k, (self.batch,), 0, faces.shape[0])
                f = faces[idx].astype(jnp.float32) / 255.0
                out += [f, f, maps[idx].astype(jnp.float32) / 255.0]
            return Batch(*out)

    class NoWarp(Trainer):
        """Augmentation without the random warp (affine, flip, colour kept)."""

        def _sample(self, state, data, i):
            orig = aug.augment
            aug.augment = lambda k, f, m, cfg: orig(k, f, m, cfg, warp=False)
            try:
                return super()._sample(state, data, i)
            finally:
                aug.augment = orig

    variants = {"full step": Trainer, "no warp": NoWarp, "no augmentation": NoAug}
    runs = {}
    for name, cls in variants.items():
        tr = cls(a.preset, a.batch)
        st = tr.init_state(0)
        data = tr.put_data(synthetic_faces(tr.preset, 64))
        st, m = tr.train_steps(st, data, 1)
        jax.block_until_ready(m)
        runs[name] = [tr, st, data]
    times = {k: [] for k in runs}
    for _ in range(a.repeats):
        for name, r in runs.items():
            tr, st, data = r
            t = time.perf_counter()
            for _ in range(a.steps):
                st, m = tr.train_steps(st, data, 1)
            jax.block_until_ready((st, m))
            times[name].append((time.perf_counter() - t) / a.steps)
            r[1] = st
    print(f"{a.preset} batch {a.batch}, {a.steps} steps x {a.repeats} rounds, load {os.getloadavg()[0]:.2f}")
    for name, ts in times.items():
        print(f"  {name:16s} {1e3 * np.median(ts):8.1f} ms/step   (all: {[round(1e3 * t) for t in ts]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
