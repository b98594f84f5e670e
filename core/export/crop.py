"""Which crop an exported model expects, said in the settings of the tools that will feed it.

facepair's crop (core/faces/align.py): the dlib mean face (landmarks 17–67, the table DeepFaceLab
and DeepFaceLive also use), fitted on all 51 points; a square of `coverage` mean-face units
centred on `center`. DeepFaceLive's face aligner ("From points", 68-landmark markers; its
xlib/face/FLandmarks2D.calc_cut) fits the same mean face on 25 of those points (17–35, the eye
corners 36/39/42/45, the mouth corners 48/54), and cuts a square of `face_coverage` units centred
on (0.5 + x_offset, 0.5 + y_offset − 0.08). So its settings can give facepair's crop exactly, up to
the point subset of the fit (measured on real faces by `fit_difference`) and its rounding
(coverage in steps of 0.1, offsets of 0.01).

FaceFusion's deep_swapper aligns five points (eye centres, nose tip, mouth corners) to a fixed
template ("dfl_whole_face"); `facefusion_crop()` says which square of mean-face units that is.
"""

from __future__ import annotations

import numpy as np

DFL_Y_SHIFT = 0.08  # DeepFaceLive's aligner subtracts this from its y offset (FaceAligner backend)
DFL_FIT_IDS = (*range(17, 36), 36, 39, 42, 45, 48, 54)
# FaceFusion's warp template for DeepFaceLab whole-face models (face_helper WARP_TEMPLATES), in
# crop units: left eye, right eye, nose tip, left and right mouth corners.
FACEFUSION_WHOLE_FACE = np.array([[0.35342266, 0.39285716], [0.62797622, 0.39285716], [0.48660713, 0.54017860],
                                  [0.38839287, 0.68750011], [0.59821427, 0.68750011]])


def deepfacelive_settings(coverage: float, center: tuple[float, float]) -> dict:
    """DeepFaceLive face-aligner settings that cut facepair's crop (coverage, center), rounded as
    its controls round them, and the crop those rounded settings give (for the record)."""
    cov = round(float(coverage), 1)
    x = round(float(center[0]) - 0.5, 2)
    y = round(float(center[1]) - 0.5 + DFL_Y_SHIFT, 2)
    return {"align_mode": "From points", "face_coverage": cov, "x_offset": x, "y_offset": y,
            "exclude_moving_parts": True, "head_mode": False,
            "gives": {"coverage": cov, "center": [0.5 + x, 0.5 + y - DFL_Y_SHIFT]}}


def deepfacelive_matrix(landmarks68: np.ndarray, size: int, face_coverage: float, x_offset: float,
                        y_offset: float) -> np.ndarray:
    """Frame → crop (2×3) as DeepFaceLive's aligner computes it for 68 landmarks."""
    from core.faces import align

    pts = np.asarray(landmarks68, np.float64)[list(DFL_FIT_IDS)]
    ref = align.MEAN_FACE[[i - 17 for i in DFL_FIT_IDS]]
    to_unit = align.umeyama(pts, ref)[:2]
    center = (0.5 + x_offset, 0.5 + y_offset - DFL_Y_SHIFT)
    return align.compose(align.unit_to_crop(size, face_coverage, center), to_unit)


def fit_difference(landmarks68: np.ndarray, size: int, coverage: float, center: tuple[float, float]) -> float:
    """How far DeepFaceLive's crop (with `deepfacelive_settings`) is from facepair's for one face:
    the largest displacement of the crop's corners, as a fraction of the crop side."""
    from core.faces import align

    s = deepfacelive_settings(coverage, center)
    ours = align.crop_matrix(landmarks68, size, coverage, center)
    theirs = deepfacelive_matrix(landmarks68, size, s["face_coverage"], s["x_offset"], s["y_offset"])
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    back = align.transform_points(corners, align.invert(ours))  # our crop's corners in the frame
    moved = align.transform_points(back, theirs) - corners
    return float(np.hypot(moved[:, 0], moved[:, 1]).max() / size)


def facefusion_crop() -> dict:
    """The square of mean-face units that FaceFusion's whole-face template cuts: coverage, center."""
    from core.faces import align

    m = align.MEAN_FACE
    five = np.array([m[19:25].mean(0), m[25:31].mean(0), m[30 - 17], m[48 - 17], m[54 - 17]])
    t = align.umeyama(five, FACEFUSION_WHOLE_FACE)  # mean-face units → template crop units
    scale = float(np.hypot(t[0, 0], t[1, 0]))
    inv = np.linalg.inv(t)
    center = inv[:2, :2] @ np.array([0.5, 0.5]) + inv[:2, 2]
    return {"coverage": 1.0 / scale, "center": [float(center[0]), float(center[1])]}
