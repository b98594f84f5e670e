"""Per-face quality measures of a conversion: pose, detail, seam, and the face-region SSIM.

Pure functions on numpy arrays (RGB uint8 frames, (68, 2) dlib landmarks in frame pixels); no
files, no model, no dlib. `core.evaluate.job` applies them to every measured face; `facepair bench
quality` reports their means (docs/quality.md says what each figure means).

- pose: `head_pose(lm68, frame_shape) -> (yaw, pitch, roll)` in degrees: `cv2.solvePnP` of the 68
  landmarks onto `FACE_3D`, a generic 3-D face (dlib's mean shape for points 17–67, the table
  core.faces.align uses, with a depth profile; an elliptic jaw line for 0–16), pinhole camera of focal
  length = frame width. Absolute angles are approximate (the face is generic); the figure reported is
  the *difference* between the swapped and the original face (`angle_error`), where most of the
  model's error cancels. On a swap, though, the generic face also reads the *new person's*
  proportions (eyes, nose, mouth and jaw spaced as B's) as a rotation, a constant offset per face
  track; `tracking_error` removes it (what is left is whether the swap follows the head's motion)
  and `offset` reports it.
- detail: `detail(frame, lm68_ref, size)`: the variance of the Laplacian of the grey image inside
  the inner-face hull (points 17–67), measured on a crop of `size` px at coverage 2.0 (the
  project's head crop, `core.faces.align.crop_matrix`) cut by the similarity fitted on the *original's*
  landmarks. Both frames go through the same warp, so the ratio swapped ÷ original compares them on
  one fixed grid, the same whatever the face's size in the frame. A perfect model still scores
  below 1, because the merge warps its crop back up into the frame (linearly) and the measure warps
  it down again: `round_trip` gives that ceiling for a model resolution (on natural images about
  0.4 for a perfect 64 px model at 64 px, 0.1 at 128 px; on the full frame it would be ~0.01).
- seam: `seam_delta_e(frame, alpha)`: the mean CIE76 colour difference (ΔE in L*a*b*) between a
  thin band just inside the blend mask's edge (alpha ≥ 0.98) and one just outside it (alpha ≤
  0.02), compared sector by sector around the mask (`SECTORS` angular sectors from its centroid), so
  a face lighter on the left and darker on the right cannot cancel out.
- `masked_ssim(a, b, mask)`: SSIM (Gaussian window, as core.evaluate.job.ssim) averaged inside a mask.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from core.faces import align

INNER = slice(17, 68)  # brows, nose, eyes, mouth
DETAIL_SIZES = (64, 128)
SECTORS = 16
BAND_FRACTION = 0.03  # the seam bands' width, as a fraction of the face width (≥ 2 px)


# ---- the generic 3-D face ------------------------------------------------------------------------

def _face_3d() -> np.ndarray:
    """(68, 3) points in mean-face units: x right, y down, z away from the camera (a frontal face
    seen by a camera looking down +z has rotation identity)."""
    inner = np.asarray(align.MEAN_FACE, np.float64)  # points 17–67, x in [0, 0.98], y in [0.02, 0.91]
    cx = 0.490127
    # The jaw: an ellipse from ear to ear through the chin (about 0.3 below the lower lip).
    theta = np.linspace(0.0, math.pi, 17)
    jaw = np.stack([cx - 0.53 * np.cos(theta), 0.22 + 0.98 * np.sin(theta)], axis=1)
    xy = np.concatenate([jaw, inner], axis=0)
    # Depth: a head that curves back towards the sides (a circle of radius 0.62 in x) …
    r = 0.62
    dx = np.clip(np.abs(xy[:, 0] - cx), 0, r - 1e-3)
    protrusion = np.sqrt(r * r - dx * dx) - r
    # … with the nose standing out, the eyes set in and the lips slightly forward.
    extra = np.zeros(68)
    extra[27:31] = (0.05, 0.11, 0.18, 0.25)       # nose bridge → tip
    extra[31:36] = (0.10, 0.13, 0.15, 0.13, 0.10)  # nostrils
    extra[36:48] = -0.04                           # eyes
    extra[48:68] = 0.04                            # lips
    extra[8] = 0.05                                # chin
    z = -(protrusion + extra)
    return np.concatenate([xy, z[:, None]], axis=1)


FACE_3D = _face_3d()
FACE_3D.setflags(write=False)


def camera_matrix(frame_shape: tuple[int, ...]) -> np.ndarray:
    """A pinhole camera for a frame: focal length = width, principal point at the centre."""
    h, w = frame_shape[:2]
    return np.array([[w, 0.0, (w - 1) / 2.0], [0.0, w, (h - 1) / 2.0], [0.0, 0.0, 1.0]])


def rotation_to_angles(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of R = Rz(roll) · Ry(yaw) · Rx(pitch)."""
    r = np.asarray(rot, np.float64)
    yaw = math.degrees(math.asin(float(np.clip(-r[2, 0], -1.0, 1.0))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll


def angles_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) · Ry(yaw) · Rx(pitch) from degrees (the inverse of `rotation_to_angles`)."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def head_pose(lm68: np.ndarray, frame_shape: tuple[int, ...]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a face from its 68 landmarks (see the module notes)."""
    pts = np.ascontiguousarray(np.asarray(lm68, np.float64).reshape(68, 1, 2))
    obj = np.ascontiguousarray(FACE_3D.reshape(68, 1, 3))
    k = camera_matrix(frame_shape)
    ok, rvec, _ = cv2.solvePnP(obj, pts, k, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return (math.nan, math.nan, math.nan)
    rot, _ = cv2.Rodrigues(rvec)
    return rotation_to_angles(rot)


def angle_difference(a: float, b: float) -> float:
    """a − b in degrees, wrapped to [−180, 180)."""
    return (float(a) - float(b) + 180.0) % 360.0 - 180.0


def angle_error(a: float, b: float) -> float:
    """|a − b| in degrees, wrapped to [0, 180]."""
    return abs(angle_difference(a, b))


def offset_and_tracking(differences: dict[int, list[float]]) -> tuple[float, float]:
    """(offset, tracking error) of signed angle differences grouped by face track: the offset is
    each track's median difference (averaged over tracks, weighted by faces), the tracking error
    the mean |difference − its track's median| over all faces."""
    tracks = [np.asarray(v, np.float64) for v in differences.values() if len(v)]
    if not tracks:
        return math.nan, math.nan
    n = sum(t.size for t in tracks)
    offset = sum(float(np.median(t)) * t.size for t in tracks) / n
    tracking = sum(float(np.abs(t - np.median(t)).sum()) for t in tracks) / n
    return offset, tracking


# ---- detail --------------------------------------------------------------------------------------

def laplacian_variance(gray: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The variance of the (3×3) Laplacian of a grey image (0–255 scale) inside `mask` (> 0)."""
    lap = cv2.Laplacian(np.asarray(gray, np.float64), cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REFLECT101)
    sel = lap if mask is None else lap[np.asarray(mask) > 0]
    return float(sel.var()) if sel.size else math.nan


def inner_hull(points: np.ndarray, size: int) -> np.ndarray:
    """uint8 0/255 filled convex hull of landmarks 17–67 (given as 68 points) on a size×size canvas."""
    pts = np.asarray(points, np.float64)[INNER]
    canvas = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    cv2.fillConvexPoly(canvas, hull, 255)
    return canvas


def face_crop(frame: np.ndarray, lm68_ref: np.ndarray, size: int,
              coverage: float = align.COVERAGE) -> tuple[np.ndarray, np.ndarray]:
    """(crop, inner-face mask) of `frame` on the fixed grid the reference landmarks define."""
    m = align.crop_matrix(lm68_ref, size, coverage)
    crop = align.warp_to_crop(np.asarray(frame), m, size)
    return crop, inner_hull(align.transform_points(lm68_ref, m), size)


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64)


def detail(frame: np.ndarray, lm68_ref: np.ndarray, size: int, coverage: float = align.COVERAGE) -> float:
    """Laplacian variance of the inner face on a `size`-px crop of coverage `coverage`."""
    crop, mask = face_crop(frame, lm68_ref, size, coverage)
    return laplacian_variance(_gray(crop), mask)


def detail_pair(original: np.ndarray, swapped: np.ndarray, lm68_original: np.ndarray, size: int,
                coverage: float = align.COVERAGE) -> tuple[float, float]:
    """(original's, swapped's) detail, both through the similarity of the original's landmarks."""
    return detail(original, lm68_original, size, coverage), detail(swapped, lm68_original, size, coverage)


def round_trip(frame: np.ndarray, lm68: np.ndarray, resolution: int, coverage: float = align.COVERAGE) -> np.ndarray:
    """The frame with its face replaced by its own `resolution`-px head crop put back as
    `facepair convert` puts a face back (linear warp inside the crop): what a *perfect* model of
    that resolution would give. Its detail ÷ the original's is the ceiling of the detail figure
    for that resolution (below 1 at every size: warping down and back up again loses the finest
    detail the crop could hold)."""
    frame = np.asarray(frame)
    m = align.crop_matrix(lm68, resolution, coverage)
    crop = align.warp_to_crop(frame, m, resolution)
    back = align.warp_from_crop(crop, m, frame.shape)
    inside = align.warp_from_crop(np.ones((resolution, resolution), np.float32), m, frame.shape) > 0.999
    return np.where(inside[..., None], back, frame)


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """SSIM of two RGB uint8 images averaged over the pixels where `mask` > 0."""
    from skimage.metrics import structural_similarity

    _, full = structural_similarity(np.asarray(a, np.float32) / 255.0, np.asarray(b, np.float32) / 255.0,
                                    channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, full=True)
    sel = np.asarray(mask) > 0
    return float(full.mean(axis=-1)[sel].mean()) if sel.any() else math.nan


def face_ssim(original: np.ndarray, other: np.ndarray, lm68_original: np.ndarray, size: int = 128,
              coverage: float = align.COVERAGE) -> float:
    """SSIM of the inner face of two frames on the fixed `size`-px grid of the original's landmarks."""
    a, mask = face_crop(original, lm68_original, size, coverage)
    b, _ = face_crop(other, lm68_original, size, coverage)
    return masked_ssim(a, b, mask)


# ---- seam ----------------------------------------------------------------------------------------

def to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (L in 0–100) of an RGB uint8 image (OpenCV, D65)."""
    return cv2.cvtColor(np.asarray(rgb, np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def seam_bands(alpha: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(inside, outside) boolean bands `width` px wide: just inside where alpha ≥ 0.98, just
    outside where alpha ≤ 0.02."""
    a = np.asarray(alpha, np.float32)
    inner = (a >= 0.98).astype(np.uint8)
    touched = (a > 0.02).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    inside = inner.astype(bool) & ~cv2.erode(inner, k, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    outside = cv2.dilate(touched, k).astype(bool) & ~touched.astype(bool)
    return inside, outside


def seam_delta_e(frame: np.ndarray, alpha: np.ndarray, width: int | None = None, sectors: int = SECTORS) -> float:
    """Mean ΔE (CIE76) between the band just inside the blend mask's edge and the band just outside,
    sector by sector around the mask's centroid (see the module notes). NaN without a mask."""
    a = np.asarray(alpha, np.float32)
    ys, xs = np.nonzero(a >= 0.98)
    if not len(xs):
        return math.nan
    if width is None:
        width = max(2, int(round(BAND_FRACTION * (xs.max() - xs.min() + 1))))
    # Work on the mask's neighbourhood only.
    h, w = a.shape
    span = np.nonzero(a > 0.02)
    pad = width + 2
    y0, y1 = max(0, span[0].min() - pad), min(h, span[0].max() + pad + 1)
    x0, x1 = max(0, span[1].min() - pad), min(w, span[1].max() + pad + 1)
    a, img = a[y0:y1, x0:x1], np.asarray(frame)[y0:y1, x0:x1]
    inside, outside = seam_bands(a, width)
    lab = to_lab(img)
    cy, cx = ys.mean() - y0, xs.mean() - x0
    yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    sector = ((np.arctan2(yy - cy, xx - cx) + math.pi) / (2 * math.pi) * sectors).astype(int) % sectors
    diffs = []
    for s in range(sectors):
        i, o = inside & (sector == s), outside & (sector == s)
        if i.sum() < 3 or o.sum() < 3:
            continue
        diffs.append(float(np.linalg.norm(lab[i].mean(axis=0) - lab[o].mean(axis=0))))
    return float(np.mean(diffs)) if diffs else math.nan


def blend_alpha(points_frame: np.ndarray, frame_shape: tuple[int, ...], resolution: int, erode: int | None = None,
                blur: int | None = None) -> np.ndarray:
    """The hull blend mask (float32 [0, 1], the frame's size) `facepair convert` builds for a face
    with these landmarks (core.convert.merge.face_alpha, mask 'hull', the same erosion and feather)."""
    from core.convert import merge

    options = merge.MergeOptions(mask="hull", erode=erode, blur=blur)
    matrix = align.crop_matrix(points_frame, resolution)
    out = np.zeros(frame_shape[:2], np.float32)
    roi = merge.face_roi(options, points_frame, matrix, resolution, frame_shape)
    if roi is None:
        return out
    x0, y0, x1, y1 = roi
    out[y0:y1, x0:x1] = merge.face_alpha(options, roi, points_frame, matrix, resolution)
    return out
