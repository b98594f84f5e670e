"""On-device augmentation: seeded and reproducible, targets never warped, geometry as specified."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.jaxmodels import augment as aug
from core.jaxmodels.presets import AugmentConfig

SIZE = 48
NONE = AugmentConfig(rotation_deg=0, zoom=0, shift=0, flip=0, lightness=0, chroma=0, warp=0)


@pytest.fixture(scope="module")
def faces(astronaut):
    import cv2

    crop = astronaut[30:250, 130:350]  # the astronaut's face
    a = cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    b = cv2.resize(crop[::-1], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    faces = np.stack([a, b, a[:, ::-1], b[:, ::-1]])
    yy, xx = np.mgrid[:SIZE, :SIZE]
    mask = ((yy - SIZE / 2) ** 2 + (xx - SIZE / 2) ** 2 < (SIZE / 3) ** 2).astype(np.uint8) * 255
    maps = np.zeros((4, SIZE, SIZE, 3), np.uint8)
    maps[..., 0] = mask
    maps[:, 10:16, 8:20, 1] = 255   # a fake left eye: asymmetric, so flips show
    return jnp.asarray(faces), jnp.asarray(maps)


_aug = jax.jit(aug.augment, static_argnums=(3, 4))


def test_same_seed_same_batch_other_seed_other_batch(faces):
    f, m = faces
    cfg = AugmentConfig()
    one = _aug(jax.random.key(7), f, m, cfg, True)
    two = _aug(jax.random.key(7), f, m, cfg, True)
    other = _aug(jax.random.key(8), f, m, cfg, True)
    for x, y in zip(one, two, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.allclose(np.asarray(one[0]), np.asarray(other[0]))


def test_targets_are_the_unwarped_faces(faces):
    """With the warp on, only the input changes: targets and maps are exactly the no-warp result."""
    f, m = faces
    cfg = AugmentConfig()
    inp, tgt, maps = _aug(jax.random.key(3), f, m, cfg, True)
    inp0, tgt0, maps0 = _aug(jax.random.key(3), f, m, cfg, False)
    # (equal up to float rounding: XLA fuses the two programs differently)
    np.testing.assert_allclose(np.asarray(tgt), np.asarray(tgt0), atol=1e-5)
    np.testing.assert_allclose(np.asarray(maps), np.asarray(maps0), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(inp0), np.asarray(tgt0))
    diff = np.abs(np.asarray(inp) - np.asarray(tgt))
    assert diff.mean() > 0.005, "the warp did nothing"
    assert diff.mean() < 0.1, "the warp destroyed the face"


def test_no_augmentation_is_identity(faces):
    f, m = faces
    inp, tgt, maps = _aug(jax.random.key(0), f, m, NONE, True)
    np.testing.assert_allclose(np.asarray(tgt), np.asarray(f) / 255.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(maps), np.asarray(m) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(inp), np.asarray(tgt))


def test_flip_mirrors_face_and_maps(faces):
    f, m = faces
    cfg = dataclasses.replace(NONE, flip=1.0)
    _, tgt, maps = _aug(jax.random.key(0), f, m, cfg, True)
    np.testing.assert_allclose(np.asarray(tgt), np.asarray(f)[:, :, ::-1] / 255.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(maps), np.asarray(m)[:, :, ::-1] / 255.0, atol=1e-6)


def test_affine_ranges_hold():
    """Drawn rotations, zooms and shifts stay within ±10°, ±5 %, ±5 % (read back from the coords)."""
    cfg = AugmentConfig()
    u = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (256, 9)).astype(np.float32))
    coords = np.asarray(aug.affine_coords(u, SIZE, dataclasses.replace(cfg, flip=0)))
    c = (SIZE - 1) / 2
    # source of the centre pixel = c − R(−θ)t/s; the x-axis step gives cos/s and sin/s
    step = coords[:, int(c), int(c) + 1] - coords[:, int(c), int(c)]
    angle = np.degrees(np.arctan2(-step[:, 0], step[:, 1]))
    scale = 1 / np.hypot(step[:, 0], step[:, 1])
    assert np.abs(angle).max() <= 10.0 + 1e-3 and np.abs(angle).max() > 8
    assert np.abs(scale - 1).max() <= 0.05 + 1e-4 and np.abs(scale - 1).max() > 0.04


def test_colour_jitter_keeps_lab_roundtrip_and_moves_colour(faces):
    f, _ = faces
    rgb = np.asarray(f, np.float32) / 255.0
    back = np.asarray(aug.lab_to_rgb(aug.rgb_to_lab(jnp.asarray(rgb))))
    np.testing.assert_allclose(back, rgb, atol=2e-4)
    params = jnp.asarray([[0.0, 8.0, 0.0, 0.0]] * 4, jnp.float32)  # +8 L: lighter
    lighter = np.asarray(aug.jitter_colour(jnp.asarray(rgb), params))
    assert lighter.mean() > rgb.mean() + 0.03


def test_colour_jitter_of_uint8_faces_equals_the_float_one(faces):
    """The training step jitters the uint8 source (linear light looked up): same colours."""
    f, _ = faces
    params = jnp.asarray([[0.2, -5.0, 4.0, -6.0], [-0.1, 3.0, -2.0, 1.0]] * 2, jnp.float32)
    got = np.asarray(aug.jitter_colour_u8(f, params))
    want = np.asarray(aug.jitter_colour(jnp.asarray(f, jnp.float32) / 255.0, params))
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(got - np.asarray(f) / 255.0).mean() > 0.01  # and it did change them


def test_warp_field_is_smooth_and_sized():
    ctrl = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 5, 2)).astype(np.float32))
    off = np.asarray(aug.warp_offsets(ctrl, SIZE, AugmentConfig()))
    assert off.shape == (2, SIZE, SIZE, 2)
    # Fold-free: neighbouring pixels' offsets differ by less than a pixel, so the warp never
    # flips the image locally; and it moves pixels by about σ = 3 % of the size.
    assert np.abs(np.diff(off, axis=1)).max() < 1.0 and np.abs(np.diff(off, axis=2)).max() < 1.0
    assert 0.3 * 0.03 * SIZE < off.std() < 3 * 0.03 * SIZE
