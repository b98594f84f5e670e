"""The shared-encoder / two-decoder face-swap model (Flax NNX).

Encoding A's face and decoding it with B's decoder gives B's face in A's pose and expression: the
encoder is shared, so it must describe pose, expression and lighting in terms both decoders read.
Inputs are NHWC floats in [0, 1]; outputs are RGB in [0, 1] (sigmoid) plus, for presets with a
learned mask, a mask in [0, 1].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from core.jaxmodels import fastconv
from core.jaxmodels.layers import Residual, Upscale, conv, dense, leaky, pixel_shuffle
from core.jaxmodels.presets import Preset


class Encoder(nnx.Module):
    def __init__(self, p: Preset, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        chans = (3, *p.encoder_channels)
        self.convs = nnx.List([conv(chans[i], chans[i + 1], 5, 2, **kw) for i in range(len(chans) - 1)])
        flat = 4 * 4 * p.encoder_channels[-1]
        self.dense1 = dense(flat, p.dense, **kw)
        self.dense2 = dense(p.dense, 4 * 4 * p.bottleneck_channels, **kw)
        self.upscale = Upscale(p.bottleneck_channels, p.encoder_upscale, **kw)
        self.bottleneck_channels = p.bottleneck_channels
        self.dtype = dtype

    def __call__(self, x):
        x = x.astype(self.dtype)
        for c in self.convs:
            x = leaky(c(x))
        x = x.reshape(x.shape[0], -1)
        x = self.dense2(self.dense1(x))
        x = x.reshape(x.shape[0], 4, 4, self.bottleneck_channels)
        return self.upscale(x)


def out_on_depth() -> bool:
    """Whether decoders run their output conv on the last upscale's space-to-depth map
    (core/jaxmodels/subpixel.py): where fastconv runs (XLA:CPU), whose kernels handle 12 output
    channels far better than 3. Same values up to float rounding; GPUs keep the plain conv."""
    return fastconv.enabled()


class Decoder(nnx.Module):
    """Upscale blocks from the 8×8 code (`in_channels`, default the encoder's upscale) to a face."""

    def __init__(self, p: Preset, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32,
                 in_channels: int | None = None):
        kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        chans = (in_channels or p.encoder_upscale, *p.decoder_channels)
        self.ups = nnx.List([Upscale(chans[i], chans[i + 1], **kw) for i in range(len(chans) - 1)])
        self.res = nnx.List([
            nnx.List([Residual(chans[i + 1], **kw) for _ in range(p.residual_blocks)])
            for i in range(len(chans) - 1)
        ])
        self.out = conv(chans[-1], 4 if p.mask else 3, 5, 1, **kw)
        self.has_mask = p.mask

    def __call__(self, z):
        x = z
        stages = list(zip(self.ups, self.res, strict=True))
        for up, blocks in stages[:-1]:
            x = up(x)
            for b in blocks:
                x = b(x)
        up, blocks = stages[-1]
        if not blocks and out_on_depth():
            # The last upscale's map stays in space-to-depth form; the output conv reads it there
            # (a 3×3 conv to 4× the channels) and only its 3-4 channels are shuffled to full size.
            y = pixel_shuffle(self.out.on_depth(up.to_depth(x)))
        else:
            x = up(x)
            for b in blocks:
                x = b(x)
            y = self.out(x)
        y = jax.nn.sigmoid(y.astype(jnp.float32))
        if self.has_mask:
            return y[..., :3], y[..., 3]
        return y, None


class FaceSwapModel(nnx.Module):
    """One encoder, one decoder per identity (the 2018 model; DeepFaceLab's "DF").

    Every architecture answers `encode`, `decode(code, side)`, `__call__(x, side)` and
    `reconstruct_both`: training, previews, conversion and export use only these."""

    def __init__(self, p: Preset, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        self.encoder = Encoder(p, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.decoder_a = Decoder(p, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.decoder_b = Decoder(p, rngs=rngs, dtype=dtype, param_dtype=param_dtype)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z, side: str):
        return (self.decoder_a if side == "a" else self.decoder_b)(z)

    def __call__(self, x, side: str):
        """Encode `x` and decode it as `side` ("a" or "b"): (rgb, mask or None)."""
        return self.decode(self.encoder(x), side)

    def reconstruct_both(self, xa, xb):
        """A through decoder A and B through decoder B, with one encoder pass over both batches."""
        z = self.encoder(jnp.concatenate([xa, xb], axis=0))
        na = xa.shape[0]
        return self.decoder_a(z[:na]), self.decoder_b(z[na:])


def count_params(tree) -> int:
    """Number of parameters of a model or a parameter state."""
    if isinstance(tree, nnx.Module):
        tree = nnx.state(tree, nnx.Param)
    return int(sum(x.size for x in jax.tree.leaves(tree)))


def param_counts(model: nnx.Module) -> dict[str, int]:
    """Parameters per part (encoder, decoders, LIAE's inter blocks) and in total."""
    parts = {name: count_params(child) for name, child in vars(model).items() if isinstance(child, nnx.Module)}
    return {**parts, "total": count_params(model)}
