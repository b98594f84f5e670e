"""The space-to-depth output convolution: the same values and gradients as the plain one."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from core.jaxmodels import layers, models, subpixel
from core.jaxmodels.presets import get_preset
from tests.tolerance import assert_sums_close, conv_atols, sum_atol

DN = ("NHWC", "HWIO", "NHWC")


def plain_conv(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN)


def depth_conv(x, w):
    """Through space-to-depth and back, as the decoders use it."""
    xd = subpixel.space_to_depth(x)
    return layers.pixel_shuffle(lax.conv_general_dilated(xd, subpixel.depth_kernel(w), (1, 1), "SAME",
                                                         dimension_numbers=DN))


def test_space_to_depth_inverts_the_pixel_shuffle():
    x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
    xd = subpixel.space_to_depth(x)
    assert xd.shape == (2, 2, 3, 12)
    np.testing.assert_array_equal(np.asarray(layers.pixel_shuffle(xd)), np.asarray(x))
    # channel group (p, q) holds pixel (2u + p, 2v + q)
    np.testing.assert_array_equal(np.asarray(xd[0, 1, 2, 9:12]), np.asarray(x[0, 3, 5]))


@pytest.mark.parametrize("k,c,o", [(5, 16, 3), (5, 4, 4), (3, 8, 5), (1, 6, 2), (7, 3, 2)])
def test_depth_kernel_gives_the_plain_convolution(k, c, o):
    r = np.random.default_rng(k * 100 + c)
    x = jnp.asarray(r.normal(size=(2, 10, 12, c)), jnp.float32)
    w = jnp.asarray(r.normal(size=(k, k, c, o)), jnp.float32)
    y = plain_conv(x, w)
    assert_sums_close(depth_conv(x, w), y, conv_atols(x, w, y)["y"])
    assert subpixel.depth_kernel(w).shape[:2] == ((k // 2 + 1) // 2 * 2 + 1,) * 2  # 5 → 3, 3 → 3, 7 → 5, 1 → 1


def test_depth_kernel_gradients_reach_the_stored_kernel():
    r = np.random.default_rng(1)
    x = jnp.asarray(r.normal(size=(2, 8, 8, 4)), jnp.float32)
    w = jnp.asarray(r.normal(size=(5, 5, 4, 3)), jnp.float32)
    g = jnp.asarray(r.normal(size=(2, 8, 8, 3)), jnp.float32)
    grads = [jax.grad(lambda x_, w_, f=f: jnp.sum(f(x_, w_) * g), argnums=(0, 1))(x, w) for f in (plain_conv, depth_conv)]
    tol = conv_atols(x, w, g)
    for a, b, name in zip(*grads, ("dx", "dw"), strict=True):
        assert_sums_close(b, a, tol[name], err_msg=name)


def test_even_kernels_are_refused():
    with pytest.raises(ValueError, match="odd kernel"):
        subpixel.depth_kernel(jnp.zeros((4, 4, 2, 3)))


@pytest.mark.parametrize("preset,on_depth", [("lite", True), ("tiny", False)])
def test_decoders_give_the_same_faces_either_way(preset, on_depth, monkeypatch):
    """lite (no residual block before the output conv) takes the space-to-depth path when it is on;
    tiny (a residual block at full size) never does. Both must equal the plain decoder."""
    p = get_preset(preset)
    model = models.FaceSwapModel(p, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    x = jax.random.uniform(jax.random.key(1), (2, p.resolution, p.resolution, 3))
    calls, terms = [], []
    real = layers.Conv.on_depth

    def spy(self, xd):
        calls.append(xd.shape)
        terms.append((self.kernel[...].size // self.kernel.shape[-1], float(jnp.abs(xd).max() * jnp.abs(self.kernel[...]).max())))
        return real(self, xd)

    monkeypatch.setattr(layers.Conv, "on_depth", spy)
    monkeypatch.setattr(models, "out_on_depth", lambda: True)
    rgb_depth, mask_depth = model(x, "b")
    assert bool(calls) == on_depth
    if on_depth:
        assert calls == [(2, p.resolution // 2, p.resolution // 2, 4 * p.decoder_channels[-1])]
    monkeypatch.setattr(models, "out_on_depth", lambda: False)
    rgb_plain, mask_plain = model(x, "b")
    # the two differ only in the output conv's summation order (kh·kw·C products), through a
    # sigmoid whose slope is at most 1/4; the other decoder (tiny) takes one path: exactly equal
    atol = 0.25 * sum_atol(*terms[0]) if on_depth else 0.0
    assert_sums_close(rgb_depth, rgb_plain, atol)
    assert (mask_depth is None) == (mask_plain is None)


def test_on_a_cpu_decoders_use_it():
    assert models.out_on_depth() == (jax.default_backend() == "cpu")
