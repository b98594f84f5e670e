"""Losses: L1/MSE, DSSIM, mask weighting, eye/mouth priority and the learned-mask term."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.jaxmodels.losses import side_loss, ssim_map, weight_map
from core.jaxmodels.presets import LossConfig
from tests.tolerance import mean_rtol

R = 32


def _img(seed):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=(2, R, R, 3)).astype(np.float32))


def _maps(face=True, eyes=False, mouth=False):
    m = np.zeros((2, R, R, 3), np.float32)
    if face:
        m[:, 4:28, 6:26, 0] = 1
    if eyes:
        m[:, 10:14, 8:24, 1] = 1
    if mouth:
        m[:, 20:24, 12:20, 2] = 1
    return jnp.asarray(m)


def test_l1_and_mse_plain():
    a, b = _img(0), _img(1)
    l1 = side_loss(a, None, b, _maps(), LossConfig(kind="l1"))
    mse = side_loss(a, None, b, _maps(), LossConfig(kind="mse"))
    # means of a.size non-negative terms, summed in another order by each program
    np.testing.assert_allclose(float(l1), float(jnp.abs(a - b).mean()), rtol=mean_rtol(a.size))
    np.testing.assert_allclose(float(mse), float(((a - b) ** 2).mean()), rtol=mean_rtol(a.size))
    assert float(side_loss(a, None, a, _maps(), LossConfig())) == 0.0


def test_ssim_is_one_for_identical_and_drops_with_noise():
    a = _img(0)
    np.testing.assert_allclose(np.asarray(ssim_map(a, a)), 1.0, atol=1e-4)
    noisy = jnp.clip(a + 0.3 * np.random.default_rng(5).normal(size=a.shape).astype(np.float32), 0, 1)
    assert float(ssim_map(a, noisy).mean()) < 0.9
    cfg = LossConfig(dssim=1.0)
    assert float(side_loss(a, None, noisy, _maps(), cfg)) > float(side_loss(a, None, noisy, _maps(), LossConfig()))


def test_mask_weighting_ignores_most_of_the_background():
    t = jnp.zeros((2, R, R, 3))
    bg_error = t.at[:, :4].set(1.0)            # wrong only outside the face (rows 0–3)
    face_error = t.at[:, 10:14, 8:24].set(1.0)  # wrong only inside
    cfg = LossConfig(mask_weighted=True, background=0.1)
    plain = LossConfig()
    maps = _maps()
    # Unweighted, a 4-row background band costs about as much as a 4×16 face patch; weighted, far less.
    assert float(side_loss(bg_error, None, t, maps, cfg)) < 0.3 * float(side_loss(bg_error, None, t, maps, plain))
    assert float(side_loss(face_error, None, t, maps, cfg)) > float(side_loss(face_error, None, t, maps, plain))


def test_eye_and_mouth_priority():
    maps = _maps(eyes=True, mouth=True)
    cfg = LossConfig(eye_multiplier=3.0, mouth_multiplier=2.0)
    w = np.asarray(weight_map(maps, cfg))
    assert w[0, 12, 16] == 3.0 and w[0, 22, 16] == 2.0 and w[0, 2, 2] == 1.0
    t = jnp.zeros((2, R, R, 3))
    eye_err = t.at[:, 10:14, 8:24].set(1.0)
    other_err = t.at[:, 26:30, 8:24].set(1.0)   # the same number of wrong pixels, elsewhere
    assert float(side_loss(eye_err, None, t, maps, cfg)) > 2 * float(side_loss(other_err, None, t, maps, cfg))


def test_learned_mask_term():
    a = _img(0)
    maps = _maps()
    good = maps[..., 0]
    bad = 1.0 - maps[..., 0]
    cfg = LossConfig(mask_loss=1.0)
    assert float(side_loss(a, good, a, maps, cfg)) == 0.0
    np.testing.assert_allclose(float(side_loss(a, bad, a, maps, cfg)), 1.0, rtol=1e-6)
    assert float(side_loss(a, bad, a, maps, dataclasses.replace(cfg, mask_loss=0.0))) == 0.0


def test_gradients_are_finite_at_the_optimum():
    """|x| and SSIM at identical images must not produce NaN gradients (the NaN guard would skip)."""
    a = _img(2)
    cfg = LossConfig(dssim=1.0, mask_weighted=True, eye_multiplier=2.0)
    g = jax.grad(lambda x: side_loss(x, None, a, _maps(eyes=True), cfg))(a)
    assert np.isfinite(np.asarray(g)).all()


def test_target_maps_are_skipped_only_when_the_loss_ignores_them():
    """original scores plain L1: its step augments no maps. Where the loss ignores them,
    a 0-channel map gives the same loss; every preset that weights or learns a mask needs them."""
    from core.jaxmodels.losses import uses_maps
    from core.jaxmodels.presets import PRESETS

    assert {n for n, p in PRESETS.items() if not uses_maps(p.loss, p.mask)} == {"original"}
    assert uses_maps(LossConfig(mask_weighted=True), False) and uses_maps(LossConfig(eye_multiplier=2.0), False)
    assert uses_maps(LossConfig(), True) and not uses_maps(LossConfig(mask_loss=0.0), True)
    r = np.random.default_rng(5)
    pred, target = (jnp.asarray(r.uniform(size=(2, 16, 16, 3)), jnp.float32) for _ in range(2))
    maps = jnp.asarray(r.uniform(size=(2, 16, 16, 3)), jnp.float32)
    for cfg in (LossConfig(kind="l1"), LossConfig(kind="mse", dssim=0.5)):
        assert not uses_maps(cfg, False)
        full = float(side_loss(pred, None, target, maps, cfg))
        assert float(side_loss(pred, None, target, maps[..., :0], cfg)) == pytest.approx(full, rel=mean_rtol(pred.size))
