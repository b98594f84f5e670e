"""DeepFaceLab's LIAE architecture: one encoder, one decoder, and two "inter" blocks between them.

`inter_ab` is trained on both people and `inter_a` on the footage's person (A) only. B's code is
`inter_ab ‖ inter_ab`, A's is `inter_a ‖ inter_ab`; the swap decodes A's face from
`inter_ab ‖ inter_ab`, B's half of the code space. With one decoder for both people, the code
carries A's lighting and expression into the swap better than two decoders do (DFL's default;
there src is our B and dst our A).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from core.jaxmodels.layers import Upscale, conv, dense, leaky
from core.jaxmodels.models import Decoder
from core.jaxmodels.presets import Preset


class ConvEncoder(nnx.Module):
    """The strided convolutions, flattened: what both inter blocks read."""

    def __init__(self, p: Preset, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        chans = (3, *p.encoder_channels)
        self.convs = nnx.List([conv(chans[i], chans[i + 1], 5, 2, **kw) for i in range(len(chans) - 1)])
        self.dtype = dtype

    def __call__(self, x):
        x = x.astype(self.dtype)
        for c in self.convs:
            x = leaky(c(x))
        return x.reshape(x.shape[0], -1)


class Inter(nnx.Module):
    """The dense bottleneck, reshaped to 4×4 and upscaled to the 8×8 half-code."""

    def __init__(self, p: Preset, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.dense1 = dense(4 * 4 * p.encoder_channels[-1], p.dense, **kw)
        self.dense2 = dense(p.dense, 4 * 4 * p.bottleneck_channels, **kw)
        self.upscale = Upscale(p.bottleneck_channels, p.encoder_upscale, **kw)
        self.bottleneck_channels = p.bottleneck_channels

    def __call__(self, f):
        x = self.dense2(self.dense1(f))
        return self.upscale(x.reshape(x.shape[0], 4, 4, self.bottleneck_channels))


class LIAEModel(nnx.Module):
    def __init__(self, p: Preset, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.encoder = ConvEncoder(p, **kw)
        self.inter_ab = Inter(p, **kw)
        self.inter_a = Inter(p, **kw)
        self.decoder = Decoder(p, in_channels=2 * p.encoder_upscale, **kw)

    def encode(self, x):
        return self.encoder(x)

    def code(self, f, side: str):
        """The decoder's input for features `f` decoded as `side`: A's own half, or B's twice."""
        ab = self.inter_ab(f)
        return jnp.concatenate([self.inter_a(f) if side == "a" else ab, ab], axis=-1)

    def decode(self, f, side: str):
        return self.decoder(self.code(f, side))

    def __call__(self, x, side: str):
        """Encode `x` and decode it as `side`: "b" on A's faces is the swap."""
        return self.decode(self.encode(x), side)

    def reconstruct_both(self, xa, xb):
        """A as A and B as B, with one pass of the encoder, of inter_ab and of the decoder."""
        na = xa.shape[0]
        f = self.encoder(jnp.concatenate([xa, xb], axis=0))
        ab = self.inter_ab(f)
        z = jnp.concatenate([jnp.concatenate([self.inter_a(f[:na]), ab[:na]], axis=-1),
                             jnp.concatenate([ab[na:], ab[na:]], axis=-1)], axis=0)
        rgb, mask = self.decoder(z)
        return (rgb[:na], None if mask is None else mask[:na]), (rgb[na:], None if mask is None else mask[na:])
