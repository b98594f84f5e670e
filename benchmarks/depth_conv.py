"""The decoders' 5x5 output convolution, plain against space-to-depth (core/jaxmodels/subpixel.py).

    python benchmarks/depth_conv.py            # lite's and original's decoder output, batch 16

For each shape: the last upscale's map (B, R/2, R/2, 4C) → [pixel shuffle → 5x5 conv to 3] (plain,
as on a GPU) or [3x3 conv to 12 → pixel shuffle] (what a CPU runs), forward and forward+backward
(gradients for the map and the kernel), both through fastconv as the models call it. Interleaved
rounds, median in ms; the largest difference between the two outputs is printed as a check.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPES = [("lite dec out", 16, 64, 16, 3), ("original dec out", 16, 64, 64, 3)]  # (label, B, R, C, O)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import numpy as np

    from core.jaxmodels import fastconv, subpixel
    from core.jaxmodels.layers import leaky, pixel_shuffle

    def plain(h, w):
        return fastconv.conv2d(pixel_shuffle(leaky(h)), w, (1, 1), "SAME")

    def depth(h, w):
        return pixel_shuffle(fastconv.conv2d(leaky(h), subpixel.depth_kernel(w), (1, 1), "SAME"))

    print(f"median of {a.rounds} interleaved rounds, ms; load {os.getloadavg()[0]:.2f}")
    for label, b, r, c, o in SHAPES:
        ks = jax.random.split(jax.random.key(0), 3)
        h = jax.random.normal(ks[0], (b, r // 2, r // 2, 4 * c))
        w = jax.random.normal(ks[1], (5, 5, c, o)) * 0.05
        g = jax.random.normal(ks[2], (b, r, r, o))
        fns = {}
        for name, f in (("plain", plain), ("depth", depth)):
            fns[f"{name} fwd"] = jax.jit(f)
            fns[f"{name} fwd+bwd"] = jax.jit(jax.grad(lambda h_, w_, f=f: jnp.sum(f(h_, w_) * g), argnums=(0, 1)))
        for f in fns.values():
            jax.block_until_ready(f(h, w))
        times = {k: [] for k in fns}
        for _ in range(a.rounds):
            for k, f in fns.items():
                t = time.perf_counter()
                jax.block_until_ready(f(h, w))
                times[k].append(time.perf_counter() - t)
        diff = float(jnp.max(jnp.abs(fns["plain fwd"](h, w) - fns["depth fwd"](h, w))))
        cells = "  ".join(f"{k} {1e3 * np.median(v):6.2f}" for k, v in times.items())
        print(f"  {label:17s} B{b} {r}x{r} {c}->{o}:  {cells}  (max |diff| {diff:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
