"""The optional patch discriminator ("GAN power", as DeepFaceLab's SAEHD offers it).

A reconstruction loss (L1 + DSSIM) is minimised by the mean of what the face could be, which is a
blur; a discriminator that tells real face patches from reconstructed ones pushes the decoders
towards detail a real face has. `PatchDiscriminator` is a small fully convolutional net (three
stride-2 4×4 convs, then a 3×3 conv to one logit per patch, a receptive field of about 46 px):
it scores every patch of a face, so it judges texture, not identity. One discriminator serves
both people (it learns "real face vs reconstruction", whoever it is).

`generator_loss` and `discriminator_loss` are the non-saturating GAN losses on those patch logits
(binary cross-entropy with logits, as DeepFaceLab's `DLoss`). Faces are masked by the face hull
before they are judged, when the run has the hull (DeepFaceLab judges `target * mask` too), so
the background does not decide the game. The step (core/jaxmodels/step.py) adds
`gan_power × generator_loss` to the reconstruction loss and updates the discriminator with its own
Adam state in the same jitted step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from core.jaxmodels.layers import conv, leaky


class PatchDiscriminator(nnx.Module):
    """(N, R, R, 3) faces in [0, 1] → (N, R/8, R/8) logits, one per patch (> 0: "real")."""

    def __init__(self, width: int, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        w = int(width)
        kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.convs = nnx.List([conv(3, w, 4, 2, **kw), conv(w, 2 * w, 4, 2, **kw), conv(2 * w, 4 * w, 4, 2, **kw)])
        self.out = conv(4 * w, 1, 3, 1, **kw)

    def __call__(self, x):
        h = x * 2.0 - 1.0
        for c in self.convs:
            h = leaky(c(h))
        return self.out(h)[..., 0].astype(jnp.float32)


def width_for(encoder_channels: tuple[int, ...]) -> int:
    """The discriminator's first width: the encoder's first (a small net beside the model)."""
    return int(encoder_channels[0])


def judged(faces: jax.Array, maps: jax.Array) -> jax.Array:
    """The faces as the discriminator sees them: times the face hull (maps' first channel) when the
    run has maps, else whole."""
    if maps.shape[-1] == 0:
        return faces
    return faces * maps[..., :1].astype(faces.dtype)


def generator_loss(fake_logits: jax.Array) -> jax.Array:
    """The reconstructions' loss for being told apart: −log σ(D(fake)), mean over patches."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """−log σ(D(real)) − log(1 − σ(D(fake))), each averaged over patches, summed (ln 4 ≈ 1.386 at chance)."""
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
