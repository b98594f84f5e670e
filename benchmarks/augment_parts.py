"""Where one side's augmentation time goes (jitted on its own, one side's batch of uint8 faces).

    python benchmarks/augment_parts.py --preset lite --batch 16

Prints the median of interleaved rounds, in ms: the whole augmentation with and without the target
maps, the colour jitter alone, one bilinear sampling pass, and the power functions the colour maths
needs (jnp.cbrt / x**p against exp(p·log x), which XLA:CPU vectorises: docs/performance.md, round 4).
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
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import numpy as np

    from core.jaxmodels import xla_cpu

    xla_cpu.configure()  # XLA:CPU flags before the backend starts
    from core.jaxmodels import augment as aug
    from core.jaxmodels.presets import get_preset

    p = get_preset(a.preset)
    cfg, n, r = p.augment, a.batch, p.resolution
    rng = np.random.default_rng(0)
    faces = jnp.asarray(rng.integers(0, 256, (n, r, r, 3)), jnp.uint8)
    maps = jnp.asarray(rng.integers(0, 256, (n, r, r, 3)), jnp.uint8)
    key = jax.random.key(0)
    params = aug.colour_params(jax.random.uniform(key, (n, 4), minval=-1.0, maxval=1.0), cfg)
    imgs = aug.jitter_colour_u8(faces, params)
    coords = aug.affine_coords(jax.random.uniform(key, (n, 5), minval=-1.0, maxval=1.0), r, cfg)
    x = jax.random.uniform(key, (n, r, r, 3), minval=0.01, maxval=1.0)
    fns = {
        "augment, with maps": (jax.jit(lambda k, f, m: aug.augment(k, f, m, cfg)), (key, faces, maps)),
        "augment, no maps": (jax.jit(lambda k, f, m: aug.augment(k, f, m[..., :0], cfg)), (key, faces, maps)),
        "colour jitter": (jax.jit(aug.jitter_colour_u8), (faces, params)),
        "one sampling pass": (jax.jit(jax.vmap(lambda i, c: aug._bilinear(i, c[..., 0], c[..., 1]))), (imgs, coords)),
        "jnp.cbrt": (jax.jit(jnp.cbrt), (x,)),
        "x ** (1/2.4)": (jax.jit(lambda v: v ** (1 / 2.4)), (x,)),
        "exp(log(x) / 3)": (jax.jit(lambda v: aug._pow_pos(v, 1 / 3)), (x,)),
    }
    times = {k: [] for k in fns}
    for f, args in fns.values():
        jax.block_until_ready(f(*args))
    for _ in range(a.rounds):
        for k, (f, args) in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f(*args))
            times[k].append(time.perf_counter() - t)
    print(f"{a.preset}: one side, {n} faces of {r}x{r}; median of {a.rounds} rounds, load {os.getloadavg()[0]:.2f}")
    for k, ts in times.items():
        print(f"  {k:20s} {1e3 * np.median(ts):7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
