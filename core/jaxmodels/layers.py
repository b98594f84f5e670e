"""Building blocks: the one convolution factory, upscale (pixel-shuffle) and residual blocks.

Every convolution of every model is made by `conv()`, so the convolution implementation can be
swapped in one place (e.g. a faster lowering on XLA:CPU). A replacement must keep the contract:
an nnx Module called on NHWC arrays, 'SAME' padding, parameters named `kernel` (HWIO) and `bias`
(so checkpoints stay loadable), compute in `dtype`, parameters stored in `param_dtype`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from core.jaxmodels import subpixel

LEAK = 0.1


def leaky(x: jax.Array) -> jax.Array:
    return jax.nn.leaky_relu(x, LEAK)


_DN = ("NHWC", "HWIO", "NHWC")


def conv2d(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    """NHWC × HWIO 'SAME' convolution: the one op every model conv runs (swap it here).

    Note for XLA:CPU: the gradients autodiff makes from XLA's convolution are slow there (the
    weight gradient, worst inside a while body; the input gradient of a strided conv, a naive
    loop). So on a CPU the op is `fastconv.conv2d`: the same forward, a custom VJP whose weight
    gradient is an im2col matmul and whose input gradient is a matmul + col2im or stride-1 convs
    (docs/performance.md).
    FACEPAIR_CONV=xla|fast overrides the choice.
    """
    from core.jaxmodels import fastconv

    if fastconv.enabled():
        return fastconv.conv2d(x, w, (stride, stride), "SAME")
    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=_DN)


class Conv(nnx.Module):
    """A 2-D convolution with bias (parameters `kernel` HWIO and `bias`, as nnx.Conv names them)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, *, rngs: nnx.Rngs,
                 dtype=jnp.float32, param_dtype=jnp.float32, kernel_init=None):
        init = kernel_init or nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (kernel, kernel, in_ch, out_ch), param_dtype))
        self.bias = nnx.Param(jnp.zeros((out_ch,), param_dtype))
        self.stride = stride
        self.dtype = dtype

    def __call__(self, x):
        y = conv2d(x.astype(self.dtype), self.kernel[...].astype(self.dtype), self.stride)
        return y + self.bias[...].astype(self.dtype)

    def on_depth(self, xd):
        """This (stride-1, odd-kernel) convolution on a map in 2× space-to-depth form (N, H/2, W/2,
        4·C), the result in the same form: the values of space_to_depth(self(pixel_shuffle(xd))),
        computed as a 3×3 convolution with 4× the channels (core/jaxmodels/subpixel.py)."""
        if self.stride != 1:
            raise ValueError("on_depth: stride-1 convolutions only")
        kd = subpixel.depth_kernel(self.kernel[...].astype(self.dtype))
        y = conv2d(xd.astype(self.dtype), kd, 1)
        return y + jnp.tile(self.bias[...].astype(self.dtype), 4)


def conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, *, rngs: nnx.Rngs, dtype=jnp.float32,
         param_dtype=jnp.float32, kernel_init=None) -> nnx.Module:
    """A 2-D convolution, NHWC, 'SAME' padding, with bias. The single place convs are made."""
    return Conv(in_ch, out_ch, kernel, stride, rngs=rngs, dtype=dtype, param_dtype=param_dtype,
                kernel_init=kernel_init)


def dense(in_f: int, out_f: int, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32) -> nnx.Module:
    return nnx.Linear(in_f, out_f, dtype=dtype, param_dtype=param_dtype, rngs=rngs)


def pixel_shuffle(x: jax.Array, r: int = 2) -> jax.Array:
    """(N, H, W, C·r·r) → (N, H·r, W·r, C): depth to space, channels grouped per output pixel."""
    n, h, w, c = x.shape
    oc = c // (r * r)
    x = x.reshape(n, h, w, r, r, oc)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h * r, w * r, oc)


def icnr(base_init=None, r: int = 2):
    """ICNR initialisation for a conv feeding a pixel shuffle: every r×r sub-pixel starts equal, so
    the upscale begins as a nearest-neighbour resize instead of a checkerboard (Aitken et al. 2017)."""
    base_init = base_init or jax.nn.initializers.he_uniform()

    def init(key, shape, dtype=jnp.float32):
        kh, kw, cin, cout = shape
        k = base_init(key, (kh, kw, cin, cout // (r * r)), dtype)
        return jnp.tile(k, (1, 1, 1, r * r))  # pixel_shuffle reads channels as (sub-pixel, channel)

    return init


class Upscale(nnx.Module):
    """3×3 conv to 4·C, LeakyReLU(0.1), pixel shuffle ×2: (H, W, in) → (2H, 2W, C)."""

    def __init__(self, in_ch: int, out_ch: int, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        self.conv = conv(in_ch, out_ch * 4, 3, 1, rngs=rngs, dtype=dtype, param_dtype=param_dtype,
                         kernel_init=icnr())

    def __call__(self, x):
        return pixel_shuffle(leaky(self.conv(x)))

    def to_depth(self, x):
        """The same output in 2× space-to-depth form (N, H, W, 4·C): the block without its shuffle."""
        return leaky(self.conv(x))


class Residual(nnx.Module):
    """conv3×3 → LeakyReLU → conv3×3, added to the input, then LeakyReLU (the faceswap res block)."""

    def __init__(self, ch: int, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        self.conv1 = conv(ch, ch, 3, 1, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        # The second conv starts small so a fresh block is close to the identity.
        self.conv2 = conv(ch, ch, 3, 1, rngs=rngs, dtype=dtype, param_dtype=param_dtype,
                          kernel_init=jax.nn.initializers.variance_scaling(0.1, "fan_in", "truncated_normal"))

    def __call__(self, x):
        return leaky(x + self.conv2(leaky(self.conv1(x))))
