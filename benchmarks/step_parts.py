"""How a training step's time splits, and what two of its optimisations are worth: the full step
against the same step without augmentation, without the random warp only, and (round 4 of
docs/performance.md) with the decoders' plain 5x5 output convolution instead of the space-to-depth
one, or with Adam's moments copied each step as before.

    python benchmarks/step_parts.py --preset lite --batch 16 --steps 5 --repeats 5
    python benchmarks/step_parts.py --preset original --steps 2 --repeats 5 \
        --variants "full step" "plain output conv" "Adam copies"

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
    ap.add_argument("--variants", nargs="+", default=["full step", "no warp", "no augmentation"],
                    help='any of: "full step", "no warp", "no augmentation", "plain output conv", "Adam copies"')
    a = ap.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import numpy as np

    from core.jaxmodels import augment as aug
    from core.jaxmodels import models
    from core.jaxmodels import step as step_mod
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

    class PlainOutputConv(Trainer):
        """The decoders' 5x5 output convolution at full size (as on a GPU), not on the space-to-depth map."""

        def _train_steps(self, state, data, n):
            orig = models.out_on_depth
            models.out_on_depth = lambda: False  # read while tracing
            try:
                return super()._train_steps(state, data, n)
            finally:
                models.out_on_depth = orig

    class AdamCopies(Trainer):
        """The update before round 4: optax's updates applied directly, so XLA recomputes the new
        moments inside the parameter update and copies the old ones (the state is donated)."""

        def _apply_batch(self, state, b):
            (loss, (la, lb)), grads = jax.value_and_grad(self._loss, has_aux=True)(state.params, b)
            gnorm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
            finite = jnp.isfinite(loss) & jnp.isfinite(gnorm)
            updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
            lr = state.lr * jnp.minimum(1.0, (state.step + 1).astype(jnp.float32) / max(1, self.preset.warmup_steps))
            new = state._replace(
                params=jax.tree.map(lambda p, u: jnp.where(finite, p - lr * u, p), state.params, updates),
                opt_state=step_mod._where(finite, opt_state, state.opt_state), step=state.step + 1,
                skipped=state.skipped + (~finite).astype(jnp.int32),
                bad_streak=jnp.where(finite, 0, state.bad_streak + 1))
            return new, {"loss_a": la, "loss_b": lb, "grad_norm": gnorm, "finite": finite, "lr": lr}

    known = {"full step": Trainer, "no warp": NoWarp, "no augmentation": NoAug,
             "plain output conv": PlainOutputConv, "Adam copies": AdamCopies}
    unknown = [v for v in a.variants if v not in known]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {list(known)}")
    variants = {v: known[v] for v in a.variants}
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
        print(f"  {name:18s} {1e3 * np.median(ts):8.1f} ms/step   (all: {[round(1e3 * t) for t in ts]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
