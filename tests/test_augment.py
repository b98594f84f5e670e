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


# ---- colour transfer between the sides (issue 15: DFL's ct_mode rct) ------------------------------

def _lab_moments(rgb01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(rgb01, np.float32), cv2.COLOR_RGB2LAB)
    return lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0)


def test_colour_transfer_gives_a_face_the_reference_faces_colour(faces, hopper):
    """Every face takes the Lab mean and spread of the reference (cv2's Lab, an independent
    measure); the geometry is untouched (no other augmentation on)."""
    import cv2

    f, m = faces
    ref = cv2.resize(hopper[40:300, 100:360], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    cfg = dataclasses.replace(NONE, colour_transfer=1.0)
    inp, tgt, _ = _aug(jax.random.key(1), f, m, cfg, True, jnp.asarray(ref[None]))
    np.testing.assert_array_equal(np.asarray(inp), np.asarray(tgt))  # input and target: the same colour
    want_mean, want_std = _lab_moments(ref.astype(np.float32) / 255)
    for face in np.asarray(tgt):
        mean, std = _lab_moments(face)
        # sRGB's gamut clips what falls outside it: means within 2 Lab units, spreads within 15 %
        np.testing.assert_allclose(mean, want_mean, atol=2.0)
        np.testing.assert_allclose(std, want_std, rtol=0.15)
    before_mean, _ = _lab_moments(np.asarray(f[0]).astype(np.float32) / 255)
    assert np.abs(before_mean - want_mean).max() > 5, "the test faces already had the reference's colour"
    # The shapes stay the face's own: gradients of lightness correlate with the original's.
    l_in = cv2.cvtColor(np.asarray(f[0]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    l_out = cv2.cvtColor((np.asarray(tgt[0]) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    assert np.corrcoef(l_in.ravel(), l_out.ravel())[0, 1] > 0.9


def test_colour_transfer_share_and_off(faces, hopper):
    """A share of 0 (or no reference) leaves the faces as before, bit for bit; a share of 0.5
    moves some faces and not others."""
    import cv2

    f, m = faces
    ref = jnp.asarray(cv2.resize(hopper[40:300, 100:360], (SIZE, SIZE))[None])
    plain = _aug(jax.random.key(2), f, m, AugmentConfig(), True)
    off = _aug(jax.random.key(2), f, m, dataclasses.replace(AugmentConfig(), colour_transfer=0.0), True, ref)
    for x, y in zip(plain, off, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    cfg = dataclasses.replace(NONE, colour_transfer=0.5)
    moved = [not np.allclose(np.asarray(_aug(jax.random.key(s), f, m, cfg, True, ref)[1][i]),
                             np.asarray(f[i]) / 255, atol=0.02)
             for s in range(6) for i in range(4)]
    assert 0.2 < np.mean(moved) < 0.8, np.mean(moved)
