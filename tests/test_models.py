"""The models: the 2018 architecture exactly, every preset's documented size, shapes, the conv factory."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from core.jaxmodels import layers
from core.jaxmodels.models import FaceSwapModel, param_counts
from core.jaxmodels.presets import PRESETS, PresetError, get_preset, preset_from_json
from tests.tolerance import assert_sums_close, conv_atols


def rngs(seed: int = 0) -> nnx.Rngs:
    # rbg keys: threefry initialisers take tens of seconds to compile eagerly on a CPU
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def abstract_model(name: str) -> FaceSwapModel:
    return nnx.eval_shape(lambda: FaceSwapModel(get_preset(name), rngs=nnx.Rngs(0)))


def test_original_parameter_counts():
    """The 2018 model: encoder 69,662,976, each decoder 6,199,747, 82,062,470 in all."""
    c = param_counts(abstract_model("original"))
    assert c["encoder"] == 69_662_976
    assert c["decoder_a"] == c["decoder_b"] == 6_199_747
    assert c["total"] == 82_062_470


def test_original_layers_exactly():
    m = abstract_model("original")
    enc = m.encoder
    kernels = [c.kernel.shape for c in enc.convs]
    assert kernels == [(5, 5, 3, 128), (5, 5, 128, 256), (5, 5, 256, 512), (5, 5, 512, 1024)]
    assert [c.stride for c in enc.convs] == [2, 2, 2, 2]
    assert enc.dense1.kernel.shape == (4 * 4 * 1024, 1024)
    assert enc.dense2.kernel.shape == (1024, 4 * 4 * 1024)
    assert enc.upscale.conv.kernel.shape == (3, 3, 1024, 4 * 512)
    dec = m.decoder_a
    assert [u.conv.kernel.shape for u in dec.ups] == [(3, 3, 512, 1024), (3, 3, 256, 512), (3, 3, 128, 256)]
    assert dec.out.kernel.shape == (5, 5, 64, 3)
    assert all(len(r) == 0 for r in dec.res)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_documented_size_and_shapes(name):
    p = get_preset(name)
    m = abstract_model(name)
    assert param_counts(m)["total"] == p.param_count, f"update {name}'s param_count and docs/training.md"
    x = jax.ShapeDtypeStruct((2, p.resolution, p.resolution, 3), jnp.float32)
    rgb, mask = nnx.eval_shape(lambda mm, xx: mm(xx, "b"), m, x)
    assert rgb.shape == (2, p.resolution, p.resolution, 3)
    assert (mask is not None) == p.mask
    if p.mask:
        assert mask.shape == (2, p.resolution, p.resolution)
    assert p.hardware and p.description


def test_tiny_forward_is_an_image_and_decoders_differ():
    p = get_preset("tiny")
    m = FaceSwapModel(p, rngs=rngs(0))
    x = np.random.default_rng(1).uniform(size=(3, p.resolution, p.resolution, 3)).astype(np.float32)
    fwd = nnx.jit(lambda mm, xx: (mm(xx, "a"), mm(xx, "b")))
    (ra, ma), (rb, mb) = fwd(m, x)
    for arr in (ra, rb, ma, mb):
        assert np.isfinite(np.asarray(arr)).all()
        assert float(arr.min()) >= 0.0 and float(arr.max()) <= 1.0
    assert not np.allclose(np.asarray(ra), np.asarray(rb)), "the two identities share a decoder"


def test_preset_roundtrip_and_unknown_name():
    for p in PRESETS.values():
        assert preset_from_json(p.to_json()) == p
    with pytest.raises(PresetError, match="unknown preset 'huge'.*tiny"):
        get_preset("huge")


def test_pixel_shuffle_places_channels_per_subpixel():
    x = jnp.arange(1 * 1 * 1 * 8, dtype=jnp.float32).reshape(1, 1, 1, 8)
    y = layers.pixel_shuffle(x)
    assert y.shape == (1, 2, 2, 2)
    # channel group (dy, dx) → output pixel (dy, dx)
    np.testing.assert_array_equal(np.asarray(y[0, :, :, 0]), [[0, 2], [4, 6]])
    np.testing.assert_array_equal(np.asarray(y[0, :, :, 1]), [[1, 3], [5, 7]])


def test_icnr_upscale_starts_as_nearest_neighbour():
    """ICNR: a fresh upscale block gives each 2×2 output block one value (no checkerboard)."""
    up = layers.Upscale(4, 3, rngs=rngs(0))
    x = np.random.default_rng(0).normal(size=(1, 5, 5, 4)).astype(np.float32)
    y = np.asarray(up(x))
    blocks = y.reshape(1, 5, 2, 5, 2, 3)
    assert np.allclose(blocks, blocks[:, :, :1, :, :1, :])


def test_conv_factory_is_the_only_conv():
    """Every convolution of every model is a layers.Conv made by layers.conv (one place to swap)."""
    for name in PRESETS:
        m = abstract_model(name)
        convs = [mod for _, mod in nnx.iter_graph(m) if isinstance(mod, nnx.Conv)]
        assert not convs, f"{name} builds nnx.Conv directly"
        ours = [mod for _, mod in nnx.iter_graph(m) if isinstance(mod, layers.Conv)]
        assert len(ours) >= 2 * len(get_preset(name).decoder_channels) + len(get_preset(name).encoder_channels)


def test_conv_matches_lax_and_strides():
    c = layers.conv(3, 5, 5, 2, rngs=rngs(0))
    x = np.random.default_rng(2).normal(size=(2, 9, 9, 3)).astype(np.float32)
    y = c(x)
    ref = jax.lax.conv_general_dilated(x, c.kernel[...], (2, 2), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC")) + c.bias[...]
    assert y.shape == (2, 5, 5, 5)
    assert_sums_close(y, ref, conv_atols(x, c.kernel[...], y, (2, 2))["y"])


def test_bf16_compute_keeps_fp32_weights():
    """On accelerators the model computes in bf16 with fp32 parameters; outputs are fp32 images."""
    from core.jaxmodels.step import compute_dtype_for

    assert compute_dtype_for("cpu") == jnp.float32
    assert compute_dtype_for("gpu") == compute_dtype_for("tpu") == jnp.bfloat16
    p = get_preset("tiny")
    m = nnx.eval_shape(lambda: FaceSwapModel(p, rngs=rngs(0), dtype=jnp.bfloat16))
    assert {x.dtype for x in jax.tree.leaves(nnx.state(m, nnx.Param))} == {jnp.dtype(jnp.float32)}
    x = jax.ShapeDtypeStruct((2, p.resolution, p.resolution, 3), jnp.float32)
    z = nnx.eval_shape(lambda mm, xx: mm.encoder(xx), m, x)
    rgb, mask = nnx.eval_shape(lambda mm, xx: mm(xx, "a"), m, x)
    assert z.dtype == jnp.bfloat16
    assert rgb.dtype == mask.dtype == jnp.float32
