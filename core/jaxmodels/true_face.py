"""The "true face" code discriminator (DeepFaceLab's `true_face_power`, for DF models).

The shared encoder describes both people, but it is free to describe them differently: B's
decoder then only ever sees codes of B's faces, and at conversion it is handed codes of A's, which
it partly decodes as A ("still A"). A small discriminator learns to tell the encoder's codes of
A's faces from those of B's; the encoder is trained, with weight `true_face`, to make B's codes
pass as A's. B's decoder thus learns on codes shaped like the ones conversion gives it.

Labels as DeepFaceLab's: A's codes (the footage, its dst) are "real", B's (its src) are judged.
The losses are the patch discriminator's (core/jaxmodels/discriminator.py), on one logit a face.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from core.jaxmodels.layers import conv, dense, leaky


class CodeDiscriminator(nnx.Module):
    """(N, 8, 8, C) encoder codes → (N,) logits (> 0: "a code of A's face")."""

    def __init__(self, channels: int, width: int, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        c, w = int(channels), int(width)
        kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.convs = nnx.List([conv(c, w, 3, 2, **kw), conv(w, 2 * w, 3, 2, **kw)])
        self.out = dense(2 * 2 * 2 * w, 1, **kw)

    def __call__(self, z):
        h = z
        for c in self.convs:
            h = leaky(c(h))
        return self.out(h.reshape(h.shape[0], -1))[:, 0].astype(jnp.float32)


def width_for(encoder_upscale: int) -> int:
    """The discriminator's first width: half the code's channels (a small net beside the model)."""
    return max(8, int(encoder_upscale) // 2)
