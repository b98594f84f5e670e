"""Reconstruction losses: L1 or MSE, optional DSSIM, mask weighting, eye/mouth priority, learned mask.

Per-pixel weights come from the target's maps (channel 0: landmark-hull mask, 1: eyes, 2: mouth),
which follow the target through the augmentation. A weighted loss is normalised by the weights'
sum so a preset's priorities change what the model attends to, not the learning rate.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from core.jaxmodels.presets import LossConfig


@functools.lru_cache(maxsize=16)
def _blur_matrix(size: int, window: int, sigma: float) -> np.ndarray:
    """(size, size) row-normalised Gaussian band: blur along one axis is a matmul (fast everywhere)."""
    r = window // 2
    i = np.arange(size)
    d = i[:, None] - i[None, :]
    g = np.exp(-0.5 * (d / sigma) ** 2) * (np.abs(d) <= r)
    return (g / g.sum(axis=1, keepdims=True)).astype(np.float32)


def _blur(x: jax.Array, window: int, sigma: float) -> jax.Array:
    """Gaussian blur of (n, H, W, C) along H and W."""
    gh = jnp.asarray(_blur_matrix(x.shape[1], window, sigma))
    gw = jnp.asarray(_blur_matrix(x.shape[2], window, sigma))
    x = jnp.einsum("ij,njwc->niwc", gh, x)
    return jnp.einsum("kw,nhwc->nhkc", gw, x)


def ssim_map(x: jax.Array, y: jax.Array, window: int | None = None, sigma: float = 1.5) -> jax.Array:
    """Per-pixel SSIM (n, H, W), averaged over channels; images in [0, 1]."""
    if window is None:
        window = 11 if x.shape[1] >= 64 else 7
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = _blur(x, window, sigma), _blur(y, window, sigma)
    sxx = _blur(x * x, window, sigma) - mx * mx
    syy = _blur(y * y, window, sigma) - my * my
    sxy = _blur(x * y, window, sigma) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean(axis=-1)


def weight_map(maps: jax.Array, cfg: LossConfig) -> jax.Array:
    """Per-pixel weights (n, H, W) from the target maps (mask, eyes, mouth) in [0, 1]."""
    w = jnp.ones(maps.shape[:3], jnp.float32)
    if cfg.mask_weighted:
        w = cfg.background + (1.0 - cfg.background) * maps[..., 0]
    if maps.shape[-1] >= 3 and (cfg.eye_multiplier != 1.0 or cfg.mouth_multiplier != 1.0):
        w = w * (1.0 + (cfg.eye_multiplier - 1.0) * maps[..., 1] + (cfg.mouth_multiplier - 1.0) * maps[..., 2])
    return w


def uses_maps(cfg: LossConfig, has_mask: bool) -> bool:
    """Whether `side_loss` reads the target maps at all: mask weighting, eye/mouth priority or a
    learned mask. When it does not (lite, original), the step need not augment them."""
    return (cfg.mask_weighted or cfg.eye_multiplier != 1.0 or cfg.mouth_multiplier != 1.0
            or (has_mask and cfg.mask_loss > 0))


def _weighted_mean(err: jax.Array, w: jax.Array) -> jax.Array:
    return jnp.sum(err * w) / jnp.maximum(jnp.sum(w), 1e-6)


def side_loss(pred: jax.Array, pred_mask: jax.Array | None, target: jax.Array, maps: jax.Array,
              cfg: LossConfig) -> jax.Array:
    """The loss of one side's reconstruction (a scalar, float32)."""
    pred = pred.astype(jnp.float32)
    w = weight_map(maps, cfg)
    diff = pred - target
    err = jnp.abs(diff) if cfg.kind == "l1" else diff * diff
    loss = _weighted_mean(err.mean(axis=-1), w)
    if cfg.dssim > 0:
        loss = loss + cfg.dssim * _weighted_mean((1.0 - ssim_map(pred, target)) / 2.0, w)
    if pred_mask is not None and cfg.mask_loss > 0:
        loss = loss + cfg.mask_loss * jnp.mean((pred_mask.astype(jnp.float32) - maps[..., 0]) ** 2)
    return loss
