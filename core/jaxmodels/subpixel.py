"""A stride-1 convolution applied to a map held in 2× space-to-depth form, without leaving that form.

Why: every decoder ends with a 5×5 convolution to 3 (or 4) channels at full resolution, right
after an upscale block whose pixel shuffle is only a relayout. On XLA:CPU that convolution runs at
about 21 GFLOP/s, forward and backward: three output channels starve both kernel libraries' matrix
kernels (docs/performance.md). Read in space-to-depth form — each 2×2 block of pixels as one pixel
with 4·C channels, channel (p·2 + q)·C + c holding pixel (2u + p, 2v + q) — the same convolution is a
3×3 convolution from 4·C to 4·O channels on the half-size grid (output channel (a·2 + b)·O + o is
output pixel (2u + a, 2v + b)): 44 % more multiply-adds for a 5×5 kernel, at 12 output channels
instead of 3, which the kernels run over twice as fast (lite's decoder output: 18.7 → 9.6 ms
forward + backward). The upscale's output is already in that form before its shuffle, so the
shuffle moves to the 3-channel result instead (a quarter of the data).

The kernel is re-indexed from the stored K×K one at each call (a fixed 0/1 einsum: gradients flow
back to the stored kernel), so parameters and checkpoints are unchanged. Only for odd K, where
the re-indexed kernel is square and 'SAME'-padded; for K = 3 it would cost 4× the multiply-adds,
so the models use it for their 5×5 output convolutions only.
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np


def space_to_depth(x: jax.Array, r: int = 2) -> jax.Array:
    """(N, H, W, C) → (N, H/r, W/r, r·r·C), channels grouped per sub-pixel: the inverse of
    `layers.pixel_shuffle`."""
    n, h, w, c = x.shape
    x = x.reshape(n, h // r, r, w // r, r, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h // r, w // r, r * r * c)


@cache
def _selector(k: int) -> np.ndarray:
    """S[t, p, a, i] = 1 where fine tap i of a 'SAME' stride-1 kernel, for output phase a, reads input
    phase p at coarse offset t (t = 0 is the lowest offset)."""
    if k % 2 != 1:
        raise ValueError(f"space-to-depth convolution needs an odd kernel, got {k}")
    lo = (k - 1) // 2
    offsets = [(a + i - lo) for a in range(2) for i in range(k)]  # fine offsets, input minus output block start
    dmin, dmax = min(offsets) // 2, max(offsets) // 2
    s = np.zeros((dmax - dmin + 1, 2, 2, k), np.float32)
    for a in range(2):
        for i in range(k):
            d = a + i - lo
            s[d // 2 - dmin, d % 2, a, i] = 1.0
    return s


def depth_kernel(w: jax.Array) -> jax.Array:
    """The (K', K', 4·C, 4·O) kernel that does on space-to-depth maps what the HWIO kernel `w`
    (K, K, C, O), stride 1, 'SAME', does on full-size ones. K' = 3 for K = 5."""
    k, _, c, o = w.shape
    s = jnp.asarray(_selector(k), w.dtype)
    kd = s.shape[0]
    wd = jnp.einsum("tpai,uqbj,ijco->tupqcabo", s, s, w)
    return wd.reshape(kd, kd, 4 * c, 4 * o)
