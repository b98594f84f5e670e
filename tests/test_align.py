"""Alignment maths (core.faces.align): Umeyama, frame↔crop matrices, masks; invariance on a real portrait."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.faces import align

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    return np.array([[c, -s, tx], [s, c, ty]])


def spread_points(seed: int, n: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-100, 100, size=(n, 2))


@settings(max_examples=60, deadline=None)
@given(angle=st.floats(-180, 180), scale=st.floats(0.05, 20), tx=finite, ty=finite, seed=st.integers(0, 2**31))
def test_umeyama_recovers_a_known_similarity(angle, scale, tx, ty, seed):
    src = spread_points(seed)
    m = similarity(angle, scale, tx, ty)
    dst = align.transform_points(src, m)
    fitted = align.umeyama(src, dst)[:2]
    np.testing.assert_allclose(fitted, m, atol=1e-6 * max(1.0, scale, abs(tx), abs(ty)))


@settings(max_examples=60, deadline=None)
@given(angle=st.floats(-180, 180), scale=st.floats(0.01, 100), tx=finite, ty=finite, seed=st.integers(0, 2**31))
def test_inverse_round_trips_points_and_matrices(angle, scale, tx, ty, seed):
    m = similarity(angle, scale, tx, ty)
    inv = align.invert(m)
    pts = spread_points(seed)
    back = align.transform_points(align.transform_points(pts, m), inv)
    np.testing.assert_allclose(back, pts, atol=1e-6 * max(1.0, abs(tx) / scale, abs(ty) / scale))
    np.testing.assert_allclose(align.compose(m, inv), [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    np.testing.assert_allclose(align.invert(inv), m, rtol=1e-9, atol=1e-6 * max(1.0, abs(tx), abs(ty)))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), noise=st.floats(0.0, 5.0))
def test_umeyama_fit_is_no_worse_than_the_truth(seed, noise):
    """Least squares: with noisy targets the fitted similarity's error never exceeds the true one's."""
    rng = np.random.default_rng(seed)
    src = spread_points(seed)
    m = similarity(rng.uniform(-90, 90), rng.uniform(0.2, 5), *rng.uniform(-50, 50, 2))
    dst = align.transform_points(src, m) + rng.normal(0, noise, src.shape)
    fitted = align.umeyama(src, dst)
    err_fit = ((align.transform_points(src, fitted) - dst) ** 2).sum()
    err_true = ((align.transform_points(src, m) - dst) ** 2).sum()
    assert err_fit <= err_true + 1e-6
    assert np.linalg.det(fitted[:2, :2]) > 0  # never a reflection


def test_umeyama_rejects_degenerate_input():
    with pytest.raises(ValueError, match="same point"):
        align.umeyama(np.zeros((5, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="shape"):
        align.umeyama(np.zeros((5, 2)), np.ones((4, 2)))


def mean_face_68(angle=0.0, scale=100.0, tx=300.0, ty=200.0) -> np.ndarray:
    """A synthetic 68-point face: landmarks 17–67 are the mean face under a similarity, the jaw
    a rough arc below it (the jaw is not used by the alignment)."""
    m = similarity(angle, scale, tx, ty)
    inner = align.transform_points(align.MEAN_FACE, m)
    t = np.linspace(-1, 1, 17)
    jaw_unit = np.stack([0.49 + 0.55 * t, 0.55 + 0.5 * np.cos(t * math.pi / 2)], axis=1)
    return np.vstack([align.transform_points(jaw_unit, m), inner])


@settings(max_examples=60, deadline=None)
@given(angle=st.floats(-60, 60), scale=st.floats(20, 2000), tx=finite, ty=finite,
       size=st.sampled_from([64, 96, 128, 256, 512, 1024]))
def test_landmarks_frame_to_crop_to_frame_within_half_a_pixel(angle, scale, tx, ty, size):
    lms = mean_face_68(angle, scale, tx, ty)
    m = align.crop_matrix(lms, size)
    in_crop = align.crop_landmarks(lms, m)  # float32, as stored
    back = align.transform_points(in_crop, align.invert(m))
    assert np.abs(back - lms).max() < 0.5


@settings(max_examples=40, deadline=None)
@given(angle=st.floats(-45, 45), scale=st.floats(30, 800), size=st.sampled_from([64, 128, 256]))
def test_crop_puts_the_mean_face_where_the_crop_definition_says(angle, scale, size):
    """Whatever the face's pose in the frame, its inner landmarks land on the canonical crop positions."""
    lms = mean_face_68(angle, scale, 500, 400)
    m = align.crop_matrix(lms, size)
    np.testing.assert_allclose(align.crop_landmarks(lms, m)[17:], align.mean_face_landmarks(size), atol=1e-3)
    # The crop scale follows coverage: one mean-face unit is size / coverage pixels.
    assert align.matrix_scale(m) * scale == pytest.approx(size / align.COVERAGE, rel=1e-6)


def test_coverage_and_center_place_the_face():
    size = 200
    wide = align.mean_face_landmarks(size, coverage=4.0)
    tight = align.mean_face_landmarks(size, coverage=1.0)
    assert np.ptp(wide[:, 0]) == pytest.approx(np.ptp(tight[:, 0]) / 4, rel=1e-6)
    # The centre point of mean-face space sits in the middle of the crop.
    centre = align.transform_points(np.array(align.CENTER), align.unit_to_crop(size))
    np.testing.assert_allclose(centre, [(size - 1) / 2] * 2)
    # With the default coverage every inner landmark is well inside the crop.
    pts = align.mean_face_landmarks(size)
    assert pts.min() > 0.15 * size and pts.max() < 0.85 * size


def test_landmark_mask_is_the_hull():
    lms = mean_face_68(scale=100, tx=100, ty=80)
    mask = align.landmark_mask(lms, (260, 240))
    assert mask.shape == (260, 240) and mask.dtype == np.uint8
    # Inside the hull (the nose tip) is on; far outside is off.
    nose = lms[30].round().astype(int)
    assert mask[nose[1], nose[0]] == 255
    assert mask[5, 5] == 0 and mask[-5, -5] == 0
    grown = align.landmark_mask(lms, (260, 240), grow=0.1)
    assert (grown >= mask).all() and (grown > 0).sum() > (mask > 0).sum()
    soft = align.landmark_mask(lms, (260, 240), blur=5)
    assert 0 < ((soft > 0) & (soft < 255)).sum()


def test_warp_round_trip_keeps_the_face(astronaut):
    """Crop then put back: the face region of the frame is reproduced."""
    import cv2

    lms = mean_face_68(scale=110, tx=180, ty=90)
    m = align.crop_matrix(lms, 256)
    crop = align.warp_to_crop(astronaut, m, 256)
    back = align.warp_from_crop(crop, m, astronaut.shape)
    mask = align.landmark_mask(lms, astronaut.shape[:2])
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8)) == 255
    diff = np.abs(back.astype(float) - astronaut.astype(float)).mean(axis=2)[mask]
    assert diff.mean() < 4


# ---- invariance on a real face (dlib detection + landmarks) ------------------------------------

def _aligned_largest_face(image: np.ndarray, size: int):
    from core.faces import detect

    faces = [(d, detect.landmarks(image, d)) for d in detect.detect(image, min_face=50)]
    # The largest face that is really a face (a badge on the suit can fool the HOG detector when
    # the portrait is rotated; upright, the badge scores low).
    real = [(d, lm) for d, lm in faces if detect.face_score(image, lm) > 0.5]
    assert real, "no face found"
    d, lm = max(real, key=lambda f: f[0].size)
    m = align.crop_matrix(lm, size)
    return align.warp_to_crop(image, m, size), align.crop_landmarks(lm, m)


@pytest.mark.slow
@pytest.mark.parametrize("angle,scale,shift", [(-15, 0.7, (40, -25)), (-15, 1.4, (-30, 20)), (15, 0.7, (15, 35)),
                                               (15, 1.4, (0, 0)), (-8, 1.0, (-60, 10)), (5, 1.2, (25, -40))])
def test_alignment_is_invariant_to_rotation_scale_and_shift(astronaut, angle, scale, shift):
    import cv2

    size = 128
    base, base_lm = _aligned_largest_face(astronaut, size)
    canvas = 900
    m = cv2.getRotationMatrix2D((256, 256), angle, scale)
    m[:, 2] += (canvas / 2 - 256 + shift[0], canvas / 2 - 256 + shift[1])
    moved = cv2.warpAffine(astronaut, m, (canvas, canvas), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    crop, _ = _aligned_largest_face(moved, size)
    region = align.landmark_mask(base_lm, size) > 127
    diff = np.abs(crop.astype(float) - base.astype(float)).mean(axis=2)[region].mean() / 255
    assert diff < 8 / 255, f"aligned crops differ by {diff * 255:.1f}/255 on the face"
