"""On-device augmentation, run inside the jitted training step.

For each face: a random affine (rotation, zoom, shift) and horizontal flip, a colour jitter in CIE
Lab (lightness contrast/offset, a*/b* shift: changes that look like lighting, not like noise), and
the 2018 model's random warp — a grid of control points perturbed with Gaussian noise and
interpolated to a smooth displacement field. The warped face is the model's input; the target is
the same face with the same affine, flip and colour but *without* the warp, so the model learns to
undo distortions instead of copying pixels. Everything is a pure function of a PRNG key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from core.jaxmodels.presets import AugmentConfig


def _bilinear(img: jax.Array, ys: jax.Array, xs: jax.Array) -> jax.Array:
    """Sample img (H, W, C) at float coords (…) with edge replication."""
    h, w = img.shape[:2]
    ys = jnp.clip(ys, 0.0, h - 1.0)
    xs = jnp.clip(xs, 0.0, w - 1.0)
    y0 = jnp.floor(ys)
    x0 = jnp.floor(xs)
    wy = (ys - y0)[..., None]
    wx = (xs - x0)[..., None]
    y0 = y0.astype(jnp.int32)
    x0 = x0.astype(jnp.int32)
    y1 = jnp.minimum(y0 + 1, h - 1)
    x1 = jnp.minimum(x0 + 1, w - 1)
    top = img[y0, x0] * (1 - wx) + img[y0, x1] * wx
    bot = img[y1, x0] * (1 - wx) + img[y1, x1] * wx
    return top * (1 - wy) + bot * wy


def _draw_params(key: jax.Array, n: int, size: int, cfg: AugmentConfig):
    """All per-face random numbers in two draws (each jax.random call compiles its own hash)."""
    k_u, k_n = jax.random.split(key)
    u = jax.random.uniform(k_u, (n, 9), minval=-1.0, maxval=1.0)
    g = cfg.warp_grid
    ctrl = jax.random.normal(k_n, (n, g, g, 2))
    return u, ctrl


def affine_coords(u: jax.Array, size: int, cfg: AugmentConfig) -> jax.Array:
    """Source coordinates (n, size, size, 2) [y, x] for a rotation, zoom, shift and flip drawn
    from u (n, ≥5) uniform in [-1, 1]."""
    angle = jnp.deg2rad(u[:, 0] * cfg.rotation_deg)
    scale = 1.0 + u[:, 1] * cfg.zoom
    shift = u[:, 2:4] * cfg.shift * size
    flip = (u[:, 4] + 1.0) / 2.0 < cfg.flip
    c = (size - 1) / 2.0
    grid = jnp.arange(size, dtype=jnp.float32)
    yy, xx = jnp.meshgrid(grid, grid, indexing="ij")
    xx = jnp.where(flip[:, None, None], (size - 1) - xx[None], xx[None])
    yy = jnp.broadcast_to(yy[None], xx.shape)
    # Output pixel p = c + s·R(θ)(q − c) + t  ⇒  source q = c + R(−θ)(p − c − t) / s.
    dy = yy - c - shift[:, 0, None, None]
    dx = xx - c - shift[:, 1, None, None]
    cos = (jnp.cos(angle) / scale)[:, None, None]
    sin = (jnp.sin(angle) / scale)[:, None, None]
    sx = c + cos * dx + sin * dy
    sy = c - sin * dx + cos * dy
    return jnp.stack([sy, sx], axis=-1)


def _interp_matrix(size: int, g: int) -> np.ndarray:
    """(size, g) Catmull-Rom weights: a g-point control line → a smooth curve over `size` pixels."""
    t = np.linspace(0, g - 1, size)
    i = np.clip(np.floor(t).astype(int), 0, g - 2)
    f = t - i
    w = np.stack([(-f ** 3 + 2 * f ** 2 - f) / 2, (3 * f ** 3 - 5 * f ** 2 + 2) / 2,
                  (-3 * f ** 3 + 4 * f ** 2 + f) / 2, (f ** 3 - f ** 2) / 2], axis=1)
    m = np.zeros((size, g), np.float32)
    for k in range(4):
        np.add.at(m, (np.arange(size), np.clip(i - 1 + k, 0, g - 1)), w[:, k])
    return m


def warp_offsets(ctrl: jax.Array, size: int, cfg: AugmentConfig) -> jax.Array:
    """A smooth displacement field (n, size, size, 2) from standard-normal control points (n, g, g, 2)."""
    m = jnp.asarray(_interp_matrix(size, ctrl.shape[1]))
    return jnp.einsum("yi,nijc,xj->nyxc", m, ctrl * (cfg.warp * size), m)


# ---- colour ---------------------------------------------------------------------------------

# numpy constants: importing this module must not start a JAX backend (jax.distributed comes first).
_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                     [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
_XYZ2RGB = np.linalg.inv(_RGB2XYZ).astype(np.float32)
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_EPS = 216 / 24389
_KAPPA = 24389 / 27


def _mix3(v: jax.Array, m: np.ndarray) -> jax.Array:
    """v (..., 3) @ m.T as three weighted sums: elementwise, so XLA fuses it with the colour maths
    around it instead of four (N, 3) x (3, 3) library matrix products (lite's step: 277 -> 271 ms)."""
    return jnp.stack([v[..., 0] * m[i, 0] + v[..., 1] * m[i, 1] + v[..., 2] * m[i, 2] for i in range(3)], axis=-1)


def _srgb_to_linear(rgb):
    """The sRGB transfer curve, undone (numpy or JAX arrays in [0, 1])."""
    xp = jnp if isinstance(rgb, jax.Array) else np
    return xp.where(rgb <= 0.04045, rgb / 12.92, ((xp.maximum(rgb, 0.04045) + 0.055) / 1.055) ** 2.4)


# Linear light of each uint8 sRGB value: faces arrive as uint8, so a lookup replaces the power.
_LINEAR_OF_U8 = _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)


def _pow_pos(x: jax.Array, p: float) -> jax.Array:
    """x ** p for x > 0 as exp(p · log x): XLA:CPU vectorises exp and log but computes cbrt and
    pow value by value (a lite batch's 16×64×64×3 values: cbrt 2.7 ms, exp∘log 0.36 ms)."""
    return jnp.exp(p * jnp.log(x))


def _linear_to_lab(lin: jax.Array) -> jax.Array:
    xyz = _mix3(lin, _RGB2XYZ) / _WHITE
    f = jnp.where(xyz > _EPS, _pow_pos(jnp.maximum(xyz, _EPS), 1 / 3), (_KAPPA * xyz + 16) / 116)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return jnp.stack([L, a, b], axis=-1)


def rgb_to_lab(rgb: jax.Array) -> jax.Array:
    """sRGB in [0, 1] → CIE Lab (D65): L in [0, 100]."""
    return _linear_to_lab(_srgb_to_linear(rgb))


def lab_to_rgb(lab: jax.Array) -> jax.Array:
    fy = (lab[..., 0] + 16) / 116
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    f = jnp.stack([fx, fy, fz], axis=-1)
    xyz = jnp.where(f ** 3 > _EPS, f ** 3, (116 * f - 16) / _KAPPA) * _WHITE
    lin = jnp.clip(_mix3(xyz, _XYZ2RGB), 0.0, 1.0)
    rgb = jnp.where(lin <= 0.0031308, lin * 12.92, 1.055 * _pow_pos(jnp.maximum(lin, 0.0031308), 1 / 2.4) - 0.055)
    return jnp.clip(rgb, 0.0, 1.0)


def colour_params(u: jax.Array, cfg: AugmentConfig) -> jax.Array:
    """Per-face (L scale, L shift, a shift, b shift) from u (n, 4) uniform in [-1, 1]."""
    return u * np.array([cfg.lightness, cfg.lightness * 100, cfg.chroma, cfg.chroma], dtype=np.float32)


def _jitter_lab(lab: jax.Array, params: jax.Array) -> jax.Array:
    p = params[:, None, None, :]
    L = (lab[..., 0] - 50.0) * (1.0 + p[..., 0]) + 50.0 + p[..., 1]
    return lab_to_rgb(jnp.stack([L, lab[..., 1] + p[..., 2], lab[..., 2] + p[..., 3]], axis=-1))


def jitter_colour(rgb: jax.Array, params: jax.Array) -> jax.Array:
    """Apply per-face Lab jitter to (n, H, W, 3) images in [0, 1]."""
    return _jitter_lab(rgb_to_lab(rgb), params)


def jitter_colour_u8(faces: jax.Array, params: jax.Array) -> jax.Array:
    """`jitter_colour` of uint8 faces (n, H, W, 3), their linear light looked up: floats in [0, 1]."""
    return _jitter_lab(lab_u8(faces), params)


def lab_u8(faces: jax.Array) -> jax.Array:
    """CIE Lab of uint8 sRGB faces (n, H, W, 3), the linear light looked up."""
    return _linear_to_lab(jnp.asarray(_LINEAR_OF_U8)[faces])


def lab_stats(lab: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-face mean and standard deviation of each Lab channel over the crop: (n, 3) each."""
    mean = jnp.mean(lab, axis=(1, 2))
    std = jnp.sqrt(jnp.mean(jnp.square(lab - mean[:, None, None]), axis=(1, 2)))
    return mean, std


def transfer_colour(lab: jax.Array, ref_lab: jax.Array, apply: jax.Array) -> jax.Array:
    """Reinhard's colour transfer (DeepFaceLab's ct_mode `rct`): where `apply` (n,) holds, each face
    takes the Lab mean and spread of its reference face, so a side's faces are seen in the other
    side's lighting and the lighting difference does not end up in the decoders."""
    mean, std = lab_stats(lab)
    ref_mean, ref_std = lab_stats(ref_lab)
    scale = ref_std / jnp.maximum(std, 1e-3)
    moved = (lab - mean[:, None, None]) * scale[:, None, None] + ref_mean[:, None, None]
    return jnp.where(apply[:, None, None, None], moved, lab)


def _colour_transfer(key: jax.Array, lab: jax.Array, ref_faces: jax.Array, share: float) -> jax.Array:
    """`transfer_colour` onto a random share of the faces, each from a random face of `ref_faces`
    (its own key: the other draws stay what they were without it)."""
    k_pick, k_apply = jax.random.split(jax.random.fold_in(key, 7))
    pick = jax.random.randint(k_pick, (lab.shape[0],), 0, ref_faces.shape[0])
    apply = jax.random.uniform(k_apply, (lab.shape[0],)) < share
    return transfer_colour(lab, lab_u8(ref_faces[pick]), apply)


# ---- the whole augmentation -----------------------------------------------------------------

def augment(key: jax.Array, faces: jax.Array, maps: jax.Array, cfg: AugmentConfig, warp: bool = True,
            colour_ref: jax.Array | None = None):
    """Augment a batch.

    faces: (n, S, S, 3) uint8 RGB; maps: (n, S, S, M) uint8 per-face weight maps (landmark-hull mask,
    eyes, mouth) that follow the target geometry. colour_ref: uint8 faces of the other side whose
    colour a share `cfg.colour_transfer` of these faces takes (None: no transfer). Returns float32
    (inputs, targets, target_maps), all in [0, 1]; inputs are warped, targets are not.
    """
    n, size = faces.shape[0], faces.shape[1]
    u, ctrl = _draw_params(key, n, size, cfg)
    coords = affine_coords(u, size, cfg)
    transfer = colour_ref is not None and cfg.colour_transfer > 0
    if transfer:
        lab = _colour_transfer(key, lab_u8(faces), colour_ref, cfg.colour_transfer)
        imgs = _jitter_lab(lab, colour_params(u[:, 5:9], cfg))
    elif cfg.lightness > 0 or cfg.chroma > 0:
        # The colour first, on the source face: input and target get the same jitter, computed
        # once per face (not per output image) and from uint8 (a lookup, not a power).
        imgs = jitter_colour_u8(faces, colour_params(u[:, 5:9], cfg))
    else:
        imgs = faces.astype(jnp.float32) / 255.0
    sample = jax.vmap(lambda img, c: _bilinear(img, c[..., 0], c[..., 1]))
    both = sample(jnp.concatenate([imgs, maps.astype(jnp.float32) / 255.0], axis=-1), coords)
    targets, target_maps = both[..., :3], both[..., 3:]
    if warp and cfg.warp > 0:
        inputs = sample(imgs, coords + warp_offsets(ctrl, size, cfg))
    else:
        inputs = targets
    return inputs, targets, target_maps
