"""Merging a generated face back into its frame: colour match, mask, blend, warp back.

Pure functions on numpy arrays (RGB uint8 frames, float32 masks in [0, 1]); no files, no model.
The face crop is described by `matrix`, the 2×3 affine map from frame pixels to crop pixels at the
model's resolution (the same matrix that cut the crop out of the frame). Warping back uses its
inverse, and only a region of interest around the face is touched: every pixel outside the face's
(eroded, feathered) mask is returned exactly as it came in.

Sizes given to the user (`erode`, `blur`) are in frame pixels, so they mean the same thing whatever
the model's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.faces import align

COLOR_METHODS = ("none", "reinhard", "histogram")
BLEND_METHODS = ("feather", "poisson")
MASK_METHODS = ("hull", "learned")

# Defaults relative to the face's size (the width of its landmark hull in the frame), used when the
# user gives no pixel value: a small erosion hides the generated face's soft border, a wide feather
# hides the seam.
AUTO_ERODE = 0.03
AUTO_BLUR = 0.08


@dataclass(frozen=True)
class MergeOptions:
    color: str = "reinhard"
    mask: str = "hull"
    blend: str = "feather"
    erode: int | None = None  # frame pixels; None: AUTO_ERODE × face width
    blur: int | None = None  # frame pixels; None: AUTO_BLUR × face width
    sharpen: float = 0.0

    def __post_init__(self):
        for name, value, allowed in (("color", self.color, COLOR_METHODS), ("blend", self.blend, BLEND_METHODS),
                                     ("mask", self.mask, MASK_METHODS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if self.erode is not None and self.erode < 0:
            raise ValueError(f"erode must be ≥ 0 pixels, not {self.erode}")
        if self.blur is not None and self.blur < 0:
            raise ValueError(f"blur must be ≥ 0 pixels, not {self.blur}")
        if self.sharpen < 0:
            raise ValueError(f"sharpen must be ≥ 0, not {self.sharpen}")


# ---- masks -------------------------------------------------------------------------------------

def hull_mask(points: np.ndarray, shape: tuple[int, int], offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The filled convex hull of `points` (N,2 x,y) on an (h, w) canvas, as float32 in [0, 1].

    `offset` is subtracted from the points first (to draw frame landmarks into a region of interest).
    """
    pts = np.asarray(points, np.float64) - np.asarray(offset, np.float64)
    return align.landmark_mask(pts, shape).astype(np.float32) / 255.0


def erode_feather(mask: np.ndarray, erode: int, blur: int) -> np.ndarray:
    """Shrink a 0/1 mask by `erode` pixels, then soften its edge over `blur` pixels (float32 [0, 1]).

    The blur spreads the edge by at most `blur` pixels outward; nothing further out changes.
    """
    m = np.asarray(mask, np.float32)
    if erode > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1))
        m = cv2.erode(m, k, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if blur > 0:
        k = 2 * blur + 1
        m = cv2.GaussianBlur(m, (k, k), sigmaX=blur / 2.0, borderType=cv2.BORDER_CONSTANT)
    return np.clip(m, 0.0, 1.0)


def face_width(points: np.ndarray) -> float:
    pts = np.asarray(points, np.float64)
    return float(pts[:, 0].max() - pts[:, 0].min()) if len(pts) else 0.0


def resolve_sizes(options: MergeOptions, points_frame: np.ndarray) -> tuple[int, int]:
    """The erosion and feather widths in frame pixels for one face (explicit, or relative to its size)."""
    width = face_width(points_frame)
    erode = options.erode if options.erode is not None else int(round(AUTO_ERODE * width))
    blur = options.blur if options.blur is not None else max(1, int(round(AUTO_BLUR * width)))
    return erode, blur


# ---- colour ------------------------------------------------------------------------------------

def _as_float(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    return np.clip(img.astype(np.float32), 0.0, 1.0)


def _weights(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, bool)
    w = np.asarray(mask) > 0.5
    return w if w.any() else np.ones(shape, bool)


def reinhard(face: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Reinhard colour transfer: match `face`'s L*a*b* mean and std to `ref`'s inside `mask`.

    Returns float32 RGB in [0, 1]. The std ratio is clamped so a flat patch cannot explode.
    """
    f_lab = cv2.cvtColor(_as_float(face), cv2.COLOR_RGB2LAB)
    r_lab = cv2.cvtColor(_as_float(ref), cv2.COLOR_RGB2LAB)
    sel = _weights(mask, f_lab.shape[:2])
    fs, rs = f_lab[sel], r_lab[sel]
    f_mean, f_std = fs.mean(axis=0), fs.std(axis=0)
    r_mean, r_std = rs.mean(axis=0), rs.std(axis=0)
    ratio = np.clip(r_std / np.maximum(f_std, 1e-3), 0.25, 4.0)
    out = (f_lab - f_mean) * ratio + r_mean
    out[..., 0] = np.clip(out[..., 0], 0.0, 100.0)
    out[..., 1:] = np.clip(out[..., 1:], -127.0, 127.0)
    return np.clip(cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB), 0.0, 1.0)


def histogram_match(face: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-channel histogram matching of `face` to `ref` inside `mask` (float32 RGB in [0, 1])."""
    f8 = _to_uint8(face)
    r8 = _to_uint8(ref)
    sel = _weights(mask, f8.shape[:2])
    out = np.empty(f8.shape, np.float32)
    levels = np.arange(256, dtype=np.float64)
    for c in range(3):
        f_hist = np.bincount(f8[..., c][sel], minlength=256).astype(np.float64)
        r_hist = np.bincount(r8[..., c][sel], minlength=256).astype(np.float64)
        f_cdf = np.cumsum(f_hist) / f_hist.sum()
        r_cdf = np.cumsum(r_hist) / r_hist.sum()
        lut = np.interp(f_cdf, r_cdf, levels)
        out[..., c] = lut[f8[..., c]] / 255.0
    return out


def color_transfer(face: np.ndarray, ref: np.ndarray, mask: np.ndarray | None, method: str) -> np.ndarray:
    """Colour-match the generated `face` to the original crop `ref` (float32 RGB [0, 1])."""
    if method == "none":
        return _as_float(face)
    if method == "reinhard":
        return reinhard(face, ref, mask)
    if method == "histogram":
        return histogram_match(face, ref, mask)
    raise ValueError(f"unknown colour method {method!r}; use one of {', '.join(COLOR_METHODS)}")


def sharpen(img: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """Unsharp mask: img + amount × (img − gaussian(img)). float32 RGB in [0, 1]."""
    f = _as_float(img)
    if amount <= 0:
        return f
    blurred = cv2.GaussianBlur(f, (0, 0), sigmaX=sigma)
    return np.clip(f + amount * (f - blurred), 0.0, 1.0)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ---- geometry ----------------------------------------------------------------------------------

def crop_corners_in_frame(matrix: np.ndarray, size: int) -> np.ndarray:
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64)
    return align.transform_points(corners, align.invert(matrix))


def roi_around(points: np.ndarray, margin: int, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) bounding `points` plus `margin`, clipped to the frame; None when empty."""
    h, w = frame_shape[:2]
    pts = np.asarray(points, np.float64)
    x0 = max(0, int(np.floor(pts[:, 0].min())) - margin)
    y0 = max(0, int(np.floor(pts[:, 1].min())) - margin)
    x1 = min(w, int(np.ceil(pts[:, 0].max())) + margin + 1)
    y1 = min(h, int(np.ceil(pts[:, 1].max())) + margin + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def warp_back(img: np.ndarray, matrix: np.ndarray, roi: tuple[int, int, int, int],
              border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Warp a crop-space image into the frame region `roi` with the inverse of `matrix`.

    `matrix` maps frame → crop; cv2's WARP_INVERSE_MAP samples the crop at matrix·(x, y) for each
    frame pixel of the region, which is warping by the inverse without rounding it twice.
    """
    x0, y0, x1, y1 = roi
    m = np.asarray(matrix, np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # region pixel → frame pixel → crop
    return cv2.warpAffine(img, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=border, borderValue=0)


# ---- blending ----------------------------------------------------------------------------------

def feather_blend(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """alpha·src + (1 − alpha)·dst as uint8; where alpha is 0 the result is dst exactly."""
    a = np.ascontiguousarray(alpha, np.float32)
    return cv2.blendLinear(np.ascontiguousarray(_to_uint8(src)), np.ascontiguousarray(dst), a, 1.0 - a)


def poisson_blend(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson (seamless) clone of `src` into `dst` inside the binary `mask`; same-size arrays.

    Pixels outside the mask keep dst's values (the caller feathers the result with its soft mask).
    """
    m = (np.asarray(mask) > 0.5).astype(np.uint8) * 255
    if m.sum() == 0:
        return dst.copy()
    # seamlessClone needs the mask clear of the image border: pad all three by 2 pixels.
    pad = 2
    d = cv2.copyMakeBorder(dst, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    s = cv2.copyMakeBorder(_to_uint8(src), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    mp = cv2.copyMakeBorder(m, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    mp[:pad + 1, :] = 0
    mp[-pad - 1:, :] = 0
    mp[:, :pad + 1] = 0
    mp[:, -pad - 1:] = 0
    if mp.sum() == 0:
        return dst.copy()
    x, y, w, h = cv2.boundingRect(mp)
    center = (x + w // 2, y + h // 2)
    cloned = cv2.seamlessClone(s, d, mp, center, cv2.NORMAL_CLONE)
    out = cloned[pad:-pad, pad:-pad]
    keep = m == 0
    out[keep] = dst[keep]
    return out


# ---- one face ----------------------------------------------------------------------------------

def face_alpha(options: MergeOptions, roi: tuple[int, int, int, int], points_frame: np.ndarray,
               matrix: np.ndarray, crop_size: int, learned: np.ndarray | None = None) -> np.ndarray:
    """The soft mask (float32 [0, 1]) of one face over its region of interest."""
    x0, y0, x1, y1 = roi
    erode, blur = resolve_sizes(options, points_frame)
    if options.mask == "learned":
        if learned is None:
            raise ValueError("mask 'learned' needs the model's mask")
        hard = (warp_back(np.asarray(learned, np.float32), matrix, roi, border=cv2.BORDER_CONSTANT) > 0.5)
        hard = hard.astype(np.float32)
    else:
        hard = hull_mask(points_frame, (y1 - y0, x1 - x0), offset=(x0, y0))
    # Only where the crop has pixels: a hull reaching past the crop edge must not pull in border smear.
    corners = np.array([[x0, y0], [x1 - 1, y0], [x0, y1 - 1], [x1 - 1, y1 - 1]], np.float64)
    in_crop = align.transform_points(corners, matrix)
    if not ((in_crop >= 0).all() and (in_crop <= crop_size - 1).all()):  # else the crop covers the region
        coverage = warp_back(np.ones((crop_size, crop_size), np.float32), matrix, roi, border=cv2.BORDER_CONSTANT)
        hard *= (coverage > 0.999).astype(np.float32)
    return erode_feather(hard, erode, blur)


def face_roi(options: MergeOptions, points_frame: np.ndarray, matrix: np.ndarray, crop_size: int,
             frame_shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """The frame region a face's merge may touch: its mask's extent plus the feather width."""
    _, blur = resolve_sizes(options, points_frame)
    if options.mask == "learned":
        return roi_around(crop_corners_in_frame(matrix, crop_size), blur + 2, frame_shape)
    return roi_around(points_frame, blur + 2, frame_shape)


def merge_face(frame: np.ndarray, face: np.ndarray, original: np.ndarray, matrix: np.ndarray,
               points_frame: np.ndarray, options: MergeOptions, learned_mask: np.ndarray | None = None,
               ) -> np.ndarray:
    """Merge one generated face into `frame` in place and return it.

    frame: (H, W, 3) uint8 RGB. face: (R, R, 3) the model's output (float [0, 1] or uint8).
    original: (R, R, 3) uint8, the crop that was fed to the model (the colour reference).
    matrix: 2×3 frame → crop. points_frame: (68, 2) landmarks in frame pixels.
    """
    size = face.shape[0]
    roi = face_roi(options, points_frame, matrix, size, frame.shape)
    if roi is None:
        return frame
    x0, y0, x1, y1 = roi
    crop_hull = hull_mask(align.transform_points(points_frame, matrix), (size, size))
    colour_mask = crop_hull if options.mask == "hull" or learned_mask is None else (learned_mask > 0.5)
    rgb = color_transfer(face, original, colour_mask, options.color)
    if options.sharpen > 0:
        rgb = sharpen(rgb, options.sharpen)
    src = _to_uint8(warp_back(_to_uint8(rgb), matrix, roi))
    alpha = face_alpha(options, roi, points_frame, matrix, size, learned_mask)
    dst = frame[y0:y1, x0:x1]
    if options.blend == "poisson":
        src = poisson_blend(dst, src, alpha > 0.5)
    frame[y0:y1, x0:x1] = feather_blend(dst, src, alpha)
    return frame
