"""Face alignment maths: the canonical mean face, Umeyama's similarity fit, frame↔crop matrices,
landmark masks. Pure numpy (cv2 only for warping and filling), no dlib: training imports it.

Conventions
- Points are (x, y) in pixels, pixel centres at integer coordinates (OpenCV's convention), float.
- A matrix is a 2×3 affine `M` mapping a frame point p to `M[:, :2] @ p + M[:, 2]`; the matrices
  made here are similarities (rotation, uniform scale, translation: no shear, no mirror).
- `MEAN_FACE` holds the canonical positions of landmarks 17–67 (eyebrows, nose, eyes, mouth: the
  jaw line 0–16 is left out because it moves with pose) in *mean-face units*: x in [0, 0.98],
  y in [0.02, 0.91]. The values are dlib's mean shape (the same table the 2018 deepfakes code used).

The crop (why two numbers)
- `coverage`: the crop's side in mean-face units. The eyebrows-to-lower-lip box is about 0.9 units
  tall, so coverage 1.0 holds only the inner face; the default, `COVERAGE` = 2.0, holds the whole
  face: forehead, chin, cheeks and the start of the ears and hair, which is what a face swap
  replaces and blends.
- `center`: the point of mean-face space put at the crop's centre. The default, `CENTER` =
  (0.49, 0.62), sits a little below the nose bridge so the chin and forehead both fit (the chin
  is about 0.35 units below the mouth, the hairline about 0.45 above the eyebrows).
A crop of size S therefore maps mean-face point u to `S * ((u - center) / coverage + 0.5)`.

API
- `MEAN_FACE` (51, 2), `LANDMARK_IDS` = range(17, 68), `COVERAGE`, `CENTER`.
- `umeyama(src, dst, scale=True) -> (3, 3)`: least-squares similarity mapping src onto dst.
- `face_matrix(landmarks68) -> (2, 3)`: frame → mean-face units.
- `crop_matrix(landmarks68, size, coverage=COVERAGE, center=CENTER) -> (2, 3)`: frame → crop px.
- `invert(M)`, `compose(A, B)` (A after B), `transform_points(points, M)`, `matrix_scale(M)`.
- `warp_to_crop(frame, M, size)`, `warp_from_crop(crop, M, frame_shape)`: image warps (area
  filtering when shrinking a lot, so small crops of large faces do not alias).
- `crop_landmarks(landmarks68, M)`, `mean_face_landmarks(size, ...)`: landmarks in crop pixels.
- `landmark_mask(points68, shape, grow=0.0, blur=0)`: uint8 0/255 convex hull of the 68 points
  (the face from jaw to eyebrows), optionally grown (fraction of the face size) and feathered.
- `face_box(landmarks68)`, `face_size(landmarks68)`: a face's extent in the landmarks' pixels.
"""

from __future__ import annotations

import numpy as np

LANDMARK_IDS = tuple(range(17, 68))

_MEAN_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)
_MEAN_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)
MEAN_FACE = np.stack([np.array(_MEAN_X), np.array(_MEAN_Y)], axis=1)
MEAN_FACE.setflags(write=False)

COVERAGE = 2.0
CENTER = (0.490127, 0.62)


# ---- similarity fitting ----------------------------------------------------------------------

def umeyama(src: np.ndarray, dst: np.ndarray, scale: bool = True) -> np.ndarray:
    """The similarity T (3×3, homogeneous) minimising Σ‖T·src_i − dst_i‖² (Umeyama 1991).

    `src`, `dst`: (N, 2) corresponding points, N ≥ 2 and src not all one point. Rotation is
    proper (det +1): a mirrored set is fitted by the best rotation, never by a reflection.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"umeyama needs two (N, 2) arrays of equal shape, N >= 2; got {src.shape}, {dst.shape}")
    n = len(src)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = (xs ** 2).sum() / n
    if var_s <= 1e-20:
        raise ValueError("umeyama: the source points are all the same point")
    cov = xd.T @ xs / n
    u, d, vt = np.linalg.svd(cov)
    s = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[-1] = -1.0
    rot = u @ np.diag(s) @ vt
    c = float((d * s).sum() / var_s) if scale else 1.0
    t = np.eye(3)
    t[:2, :2] = c * rot
    t[:2, 2] = mu_d - c * rot @ mu_s
    return t


def _as68(landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got {pts.shape}")
    return pts


def face_matrix(landmarks: np.ndarray) -> np.ndarray:
    """Frame → mean-face units (2×3), fitted on landmarks 17–67."""
    pts = _as68(landmarks)[list(LANDMARK_IDS)]
    return umeyama(pts, MEAN_FACE)[:2]


def unit_to_crop(size: int, coverage: float = COVERAGE, center: tuple[float, float] = CENTER) -> np.ndarray:
    """Mean-face units → crop pixels (2×3) for a crop of `size` pixels."""
    if coverage <= 0:
        raise ValueError(f"coverage must be > 0, got {coverage}")
    k = size / coverage
    # Pixel centres: the crop spans [-0.5, size - 0.5]; its centre is (size - 1) / 2.
    c = (size - 1) / 2.0
    return np.array([[k, 0.0, c - k * center[0]], [0.0, k, c - k * center[1]]])


def crop_matrix(landmarks: np.ndarray, size: int, coverage: float = COVERAGE,
                center: tuple[float, float] = CENTER) -> np.ndarray:
    """Frame → crop pixels (2×3) for the face with these 68 landmarks."""
    return compose(unit_to_crop(size, coverage, center), face_matrix(landmarks))


# ---- matrix algebra --------------------------------------------------------------------------

def _h(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.shape == (3, 3):
        return m
    if m.shape != (2, 3):
        raise ValueError(f"expected a 2×3 affine matrix, got shape {m.shape}")
    return np.vstack([m, [0.0, 0.0, 1.0]])


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2×3 matrix applying `b` first, then `a`."""
    return (_h(a) @ _h(b))[:2]


def invert(m: np.ndarray) -> np.ndarray:
    """The inverse of a 2×3 affine matrix (crop → frame from frame → crop)."""
    m = _h(m)
    a = m[:2, :2]
    det = np.linalg.det(a)
    if abs(det) < 1e-12:
        raise ValueError("matrix is singular and has no inverse")
    ai = np.linalg.inv(a)
    out = np.empty((2, 3))
    out[:, :2] = ai
    out[:, 2] = -ai @ m[:2, 2]
    return out


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2×3 matrix to (..., 2) points; returns float64 of the same shape."""
    pts = np.asarray(points, dtype=np.float64)
    m = _h(m)
    return pts @ m[:2, :2].T + m[:2, 2]


def matrix_scale(m: np.ndarray) -> float:
    """The uniform scale of a similarity matrix (sqrt of |det|)."""
    return float(np.sqrt(abs(np.linalg.det(_h(m)[:2, :2]))))


def crop_landmarks(landmarks: np.ndarray, m: np.ndarray) -> np.ndarray:
    """68 frame landmarks in crop pixels (float32)."""
    return transform_points(_as68(landmarks), m).astype(np.float32)


def mean_face_landmarks(size: int, coverage: float = COVERAGE, center: tuple[float, float] = CENTER) -> np.ndarray:
    """Landmarks 17–67 of the mean face in crop pixels (51, 2) float32."""
    return transform_points(MEAN_FACE, unit_to_crop(size, coverage, center)).astype(np.float32)


# ---- warping ---------------------------------------------------------------------------------

def warp_to_crop(frame: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The aligned crop (size×size) of `frame` through frame→crop matrix `m`.

    When the crop shrinks the face by more than 2×, the frame region is first reduced with area
    averaging (what cv2.resize does well and warpAffine does not), so crops do not alias.
    """
    import cv2

    m = np.asarray(m, dtype=np.float64)[:2]
    scale = matrix_scale(m)
    if scale < 0.5:
        # Cut the region the crop needs (with a margin), shrink it, and warp from the smaller copy.
        inv = invert(m)
        corners = transform_points(np.array([[-1, -1], [size, -1], [-1, size], [size, size]], float), inv)
        h, w = frame.shape[:2]
        x0 = int(max(0, np.floor(corners[:, 0].min()) - 2))
        y0 = int(max(0, np.floor(corners[:, 1].min()) - 2))
        x1 = int(min(w, np.ceil(corners[:, 0].max()) + 3))
        y1 = int(min(h, np.ceil(corners[:, 1].max()) + 3))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            f = 1.0 / scale / 1.5  # shrink to ~1.5× the crop's resolution, then warp
            rw, rh = max(1, round((x1 - x0) / f)), max(1, round((y1 - y0) / f))
            region = cv2.resize(frame[y0:y1, x0:x1], (rw, rh), interpolation=cv2.INTER_AREA)
            sx, sy = rw / (x1 - x0), rh / (y1 - y0)
            # region pixel centre i maps to frame x0 + (i + 0.5) / sx - 0.5
            to_frame = np.array([[1 / sx, 0, x0 + 0.5 / sx - 0.5], [0, 1 / sy, y0 + 0.5 / sy - 0.5]])
            m = compose(m, to_frame)
            frame = region
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)


def warp_from_crop(crop: np.ndarray, m: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """A crop (or mask) put back into frame coordinates (frame_shape[:2]); outside is 0."""
    import cv2

    h, w = frame_shape[:2]
    return cv2.warpAffine(crop, np.asarray(m, dtype=np.float64)[:2], (w, h),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# ---- masks and boxes -------------------------------------------------------------------------

def face_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the 68 landmarks."""
    pts = _as68(landmarks)
    return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))


def face_size(landmarks: np.ndarray) -> float:
    """A pose-robust face size in pixels: the side of the mean-face unit square in this image."""
    return 1.0 / matrix_scale(face_matrix(landmarks))


def landmark_mask(points: np.ndarray, shape: tuple[int, ...] | int, grow: float = 0.0, blur: int = 0) -> np.ndarray:
    """uint8 mask (0/255, or feathered with `blur`) of the convex hull of the 68 landmarks.

    `shape` is (h, w) or a crop size. `grow` dilates the hull by that fraction of the face size
    (0.1 = 10 %), `blur` is a Gaussian feather radius in pixels (0 = hard edge).
    """
    import cv2

    h, w = (shape, shape) if isinstance(shape, (int, np.integer)) else tuple(shape[:2])
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    mask = np.zeros((h, w), np.uint8)
    if len(pts) < 3 or not np.isfinite(pts).all():
        return mask
    hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=4)
    if grow > 0:
        span = max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]))
        r = max(1, int(round(grow * span)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        mask = cv2.dilate(mask, kernel)
    if blur > 0:
        k = 2 * int(blur) + 1
        mask = cv2.GaussianBlur(mask, (k, k), 0)
    return mask
