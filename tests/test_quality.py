"""core.evaluate.quality on synthetic inputs whose answer is known: a wrong formula fails here."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from core.evaluate import quality

SIZE = 500


def _landmarks(face_px: float = 300.0, offset=(100.0, 60.0)) -> np.ndarray:
    """68 frontal landmarks (the generic face's x, y) with a face `face_px` wide."""
    return quality.FACE_3D[:, :2] * face_px + np.asarray(offset)


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(128, 40, (SIZE, SIZE, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 0.7), 0, 255).astype(np.uint8)


def _project(yaw, pitch, roll, shape=(480, 640), distance=6.0) -> np.ndarray:
    rot = quality.angles_to_rotation(yaw, pitch, roll)
    centred = quality.FACE_3D - quality.FACE_3D.mean(axis=0)
    cam = centred @ rot.T + np.array([0.1, -0.05, distance])
    k = quality.camera_matrix(shape)
    uv = cam @ k.T
    return uv[:, :2] / uv[:, 2:3]


# ---- pose ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("angles", [(0, 0, 0), (20, 0, 0), (0, -15, 0), (0, 0, 25), (-30, 10, -8), (12, 18, 5)])
def test_pose_of_rotated_landmarks_recovers_the_rotation(angles):
    lm = _project(*angles)
    got = quality.head_pose(lm, (480, 640))
    assert np.allclose(got, angles, atol=0.3), (got, angles)


def test_pose_error_between_two_faces_is_their_rotation_difference():
    a = quality.head_pose(_project(10, 5, 0), (480, 640))
    b = quality.head_pose(_project(-5, 5, 3), (480, 640))
    assert math.isclose(quality.angle_error(a[0], b[0]), 15, abs_tol=0.3)
    assert quality.angle_error(a[1], b[1]) < 0.3
    assert math.isclose(quality.angle_error(a[2], b[2]), 3, abs_tol=0.3)
    assert quality.angle_error(179, -179) == pytest.approx(2)


def test_a_constant_offset_is_told_apart_from_tracking_error():
    # Track 1: the swap reads 12° more pitch on every face, and follows the head exactly.
    # Track 2: no offset, but the swap lags the head by ±2° on alternate faces.
    diffs = {1: [12.0, 12.0, 12.0, 12.0], 2: [2.0, -2.0, 2.0, -2.0, 0.0, 0.0]}
    offset, tracking = quality.offset_and_tracking(diffs)
    assert offset == pytest.approx((12.0 * 4 + 0.0 * 6) / 10)
    assert tracking == pytest.approx((0 * 4 + 2 * 4 + 0 * 2) / 10)
    assert quality.angle_difference(-179, 179) == pytest.approx(2) and quality.angle_difference(10, 30) == -20
    assert all(math.isnan(v) for v in quality.offset_and_tracking({}))


def test_angles_and_rotation_round_trip():
    r = quality.angles_to_rotation(33, -21, 47)
    assert np.allclose(r @ r.T, np.eye(3)) and np.allclose(quality.rotation_to_angles(r), (33, -21, 47))


# ---- detail --------------------------------------------------------------------------------------

def test_detail_of_a_blurred_copy_is_far_lower_and_of_a_copy_equal():
    frame, lm = _texture(), _landmarks()
    blurred = cv2.GaussianBlur(frame, (0, 0), 3.0)
    for size in quality.DETAIL_SIZES:
        d_o, d_s = quality.detail_pair(frame, frame.copy(), lm, size)
        assert d_o == d_s > 0
        d_o, d_b = quality.detail_pair(frame, blurred, lm, size)
        assert d_b / d_o < 0.3, (size, d_b / d_o)


def _natural(face_px: float):
    from skimage import data

    frame = cv2.resize(data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return frame, _landmarks(face_px, (250 - 0.49 * face_px, 250 - 0.55 * face_px))


def test_a_perfect_64px_face_scores_the_same_on_the_fixed_grid_whatever_its_size():
    r = [_perfect_64(face_px) for face_px in (120, 240)]
    assert abs(r[0] - r[1]) < 0.1, r


def _perfect_64(face_px: float) -> float:
    frame, lm = _natural(face_px)
    perfect = quality.round_trip(frame, lm, 64)  # everything a 64 px model can render, nothing finer
    d_o, d_s = quality.detail_pair(frame, perfect, lm, 64)
    r64 = d_s / d_o
    assert 0.3 < r64 < 0.6, r64  # the put-back warp and the measuring warp lose the finest detail
    d_o128, d_s128 = quality.detail_pair(frame, perfect, lm, 128)
    assert d_s128 / d_o128 < 0.5 * r64, d_s128 / d_o128  # a 64 px face has no 128 px detail
    perfect128 = quality.round_trip(frame, lm, 128)
    assert quality.detail_pair(frame, perfect128, lm, 128)[1] / d_o128 > 2 * d_s128 / d_o128
    # On the full frame (no fixed grid) the same perfect 64 px face would look hopeless: the
    # reference grid is what makes the figure fair across face sizes.
    mask = quality.inner_hull(lm, SIZE)
    full = quality.laplacian_variance(quality._gray(perfect), mask) / quality.laplacian_variance(quality._gray(frame),
                                                                                                   mask)
    assert full < 0.5 * r64, full
    return r64


def test_detail_is_measured_inside_the_inner_face_only():
    frame, lm = _texture(), _landmarks()
    flat_outside = frame.copy()
    crop, mask = quality.face_crop(frame, lm, 64)
    assert crop.shape == (64, 64, 3) and mask.dtype == np.uint8 and 0 < (mask > 0).mean() < 0.6
    # Flattening everything well outside the inner-face hull barely moves the figure.
    hull = quality.inner_hull(lm, SIZE)
    grown = cv2.dilate(hull, np.ones((41, 41), np.uint8)) > 0
    flat_outside[~grown] = 128
    d_o, d_f = quality.detail_pair(frame, flat_outside, lm, 64)
    assert abs(d_f / d_o - 1) < 0.05


# ---- seam ----------------------------------------------------------------------------------------

def _lab_colour(lab) -> np.ndarray:
    """An RGB uint8 colour of the given L*a*b* (rounded), and its actual Lab."""
    rgb = cv2.cvtColor(np.float32([[lab]]), cv2.COLOR_LAB2RGB)
    return np.clip(np.round(rgb[0, 0] * 255), 0, 255).astype(np.uint8)


def _disc(radius=100, soft=8) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    r = np.hypot(yy - 250, xx - 250)
    return np.clip((radius - r) / soft + 0.5, 0, 1).astype(np.float32)


def test_seam_of_a_known_colour_step_is_its_delta_e():
    alpha = _disc()
    c_in, c_out = _lab_colour((60, 20, 10)), _lab_colour((50, 5, 30))
    frame = np.where((alpha > 0.5)[..., None], c_in, c_out).astype(np.uint8)
    expected = float(np.linalg.norm(quality.to_lab(c_in[None, None])[0, 0] - quality.to_lab(c_out[None, None])[0, 0]))
    assert expected > 20
    assert quality.seam_delta_e(frame, alpha) == pytest.approx(expected, rel=1e-3)
    # No step, no seam.
    assert quality.seam_delta_e(np.full_like(frame, 120), alpha) == pytest.approx(0, abs=1e-4)
    # No mask, no figure.
    assert math.isnan(quality.seam_delta_e(frame, np.zeros_like(alpha)))


def test_seam_compares_each_side_locally():
    # Inside: colour X on the left, Y on the right; outside the other way round. Band means over
    # the whole ring would be equal (ΔE 0); side by side every sector shows the step.
    alpha = _disc()
    x, y = _lab_colour((55, 0, 0)), _lab_colour((70, 0, 0))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    left = (xx < 250)[..., None]
    inside = (alpha > 0.5)[..., None]
    frame = np.where(inside, np.where(left, x, y), np.where(left, y, x)).astype(np.uint8)
    step = float(np.linalg.norm(quality.to_lab(x[None, None])[0, 0] - quality.to_lab(y[None, None])[0, 0]))
    assert quality.seam_delta_e(frame, alpha) == pytest.approx(step, rel=0.1)


def test_seam_bands_sit_on_either_side_of_the_edge():
    alpha = _disc(soft=10)
    inside, outside = quality.seam_bands(alpha, 4)
    assert inside.any() and outside.any() and not (inside & outside).any()
    assert (alpha[inside] >= 0.98).all() and (alpha[outside] <= 0.02).all()
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    r = np.hypot(yy - 250, xx - 250)
    assert r[inside].min() > 85 and r[outside].max() < 115  # thin: only near the edge


def test_blend_alpha_is_the_converts_hull_mask():
    lm = _landmarks(200, (150, 100))
    alpha = quality.blend_alpha(lm, (SIZE, SIZE, 3), 64)
    assert alpha.shape == (SIZE, SIZE) and alpha.dtype == np.float32
    nose = lm[30].round().astype(int)
    assert alpha[nose[1], nose[0]] == pytest.approx(1.0)
    assert alpha[5, 5] == 0.0
    assert 0.02 < alpha.mean() < 0.5


# ---- face SSIM -----------------------------------------------------------------------------------

def test_face_ssim_is_one_for_a_copy_and_lower_for_a_blurred_one():
    frame, lm = _texture(), _landmarks()
    assert quality.face_ssim(frame, frame.copy(), lm) == pytest.approx(1.0)
    assert quality.face_ssim(frame, cv2.GaussianBlur(frame, (0, 0), 8.0), lm) < 0.5
    # Only the inner face counts: a frame that differs well outside it scores 1.
    other = frame.copy()
    other[~(cv2.dilate(quality.inner_hull(lm, SIZE), np.ones((61, 61), np.uint8)) > 0)] = 0
    assert quality.face_ssim(frame, other, lm) == pytest.approx(1.0, abs=1e-3)
