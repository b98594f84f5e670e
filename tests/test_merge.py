"""core.convert.merge: colour transfer, masks, blending and warping back, on real pixels (no model needed)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.convert import merge
from core.faces import align


def synthetic_landmarks(cx: float, cy: float, size: float) -> np.ndarray:
    """68 plausible landmarks: dlib's mean face (17–67) plus a jaw arc, centred at (cx, cy)."""
    inner = (align.MEAN_FACE - [0.49, 0.45]) * size + [cx, cy]
    t = np.linspace(np.pi, 0, 17)
    jaw = np.stack([cx + 0.52 * size * np.cos(t), cy + 0.1 * size + 0.55 * size * np.sin(t)], axis=1)
    return np.concatenate([jaw, inner]).astype(np.float32)


@pytest.fixture(scope="module")
def scene(astronaut):
    frame = np.ascontiguousarray(astronaut[:, :, :])
    pts = synthetic_landmarks(240.0, 190.0, 150.0)
    size = 64
    m = align.crop_matrix(pts, size)
    original = align.warp_to_crop(frame, m, size)
    return frame, pts, m, original


def _outside(frame_shape, pts, margin):
    mask = align.landmark_mask(pts, frame_shape[:2])
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    return cv2.dilate(mask, k) == 0


@pytest.mark.parametrize("blend", ["feather", "poisson"])
@pytest.mark.parametrize("color", ["none", "reinhard", "histogram"])
def test_pixels_outside_the_mask_are_untouched(scene, blend, color):
    frame, pts, m, original = scene
    face = np.zeros((64, 64, 3), np.float32)
    face[..., 1] = 1.0  # a green face: every changed pixel shows
    opts = merge.MergeOptions(color=color, blend=blend, erode=3, blur=6)
    out = merge.merge_face(frame.copy(), face, original, m, pts, opts)
    outside = _outside(frame.shape, pts, margin=6 + 2)
    assert np.array_equal(out[outside], frame[outside])
    inside = align.landmark_mask(pts, frame.shape[:2], grow=0) > 0
    changed = np.abs(out.astype(int) - frame.astype(int)).sum(axis=2) > 10
    assert changed[inside].mean() > 0.5


def test_learned_mask_limits_the_change_to_the_mask(scene):
    frame, pts, m, original = scene
    face = np.ones((64, 64, 3), np.float32)
    learned = np.zeros((64, 64), np.float32)
    learned[20:44, 20:44] = 1.0
    opts = merge.MergeOptions(mask="learned", color="none", erode=0, blur=2)
    out = merge.merge_face(frame.copy(), face, original, m, pts, opts, learned_mask=learned)
    in_frame = align.warp_from_crop(learned, m, frame.shape) > 0.5
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    outside = cv2.dilate(in_frame.astype(np.uint8), k) == 0
    assert np.array_equal(out[outside], frame[outside])
    core = cv2.erode(in_frame.astype(np.uint8), k) > 0
    assert (out[core] > 240).all()


def test_learned_mask_option_needs_a_mask(scene):
    frame, pts, m, original = scene
    with pytest.raises(ValueError, match="learned"):
        merge.merge_face(frame.copy(), original, original, m, pts, merge.MergeOptions(mask="learned"))


def test_reinhard_matches_lab_mean_and_std_inside_the_mask(astronaut, hopper):
    face = cv2.resize(hopper, (96, 96), interpolation=cv2.INTER_AREA)
    ref = cv2.resize(astronaut[50:250, 150:350], (96, 96), interpolation=cv2.INTER_AREA)
    mask = np.zeros((96, 96), np.float32)
    mask[16:80, 16:80] = 1
    out = merge.reinhard(face, ref, mask)
    lab_out = cv2.cvtColor(out, cv2.COLOR_RGB2LAB)[mask > 0]
    lab_ref = cv2.cvtColor(ref.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[mask > 0]
    lab_in = cv2.cvtColor(face.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[mask > 0]
    assert np.abs(lab_out.mean(0) - lab_ref.mean(0)).max() < 2.0
    assert np.abs(lab_out.std(0) - lab_ref.std(0)).max() < 2.5
    # and it did move: the input's statistics were far from the reference's
    assert np.abs(lab_in.mean(0) - lab_ref.mean(0)).max() > 5.0


def test_histogram_matching_matches_channel_quantiles(astronaut, hopper):
    face = cv2.resize(hopper, (80, 80))
    ref = cv2.resize(astronaut, (80, 80))
    out = (merge.histogram_match(face, ref, None) * 255).round()
    for c in range(3):
        q_out = np.percentile(out[..., c], [10, 50, 90])
        q_ref = np.percentile(ref[..., c], [10, 50, 90])
        assert np.abs(q_out - q_ref).max() <= 6


def test_color_none_is_identity(hopper):
    face = cv2.resize(hopper, (32, 32))
    out = merge.color_transfer(face, np.zeros_like(face), None, "none")
    assert np.array_equal((out * 255).round().astype(np.uint8), face)


def test_erode_and_feather_widths():
    mask = np.zeros((100, 100), np.float32)
    mask[30:70, 30:70] = 1
    eroded = merge.erode_feather(mask, erode=5, blur=0)
    assert eroded[35:65, 35:65].min() == 1 and eroded[:35].max() == 0 and eroded[:, 65:].max() == 0
    soft = merge.erode_feather(mask, erode=0, blur=8)
    assert soft[:21].max() == 0 and soft[:, 79:].max() == 0  # spreads at most 8 px + 1 outward
    assert 0 < soft[30, 50] < 1  # the edge is soft
    assert soft[50, 50] == pytest.approx(1.0, abs=1e-3)


def test_sharpen_zero_is_identity_and_positive_adds_detail(hopper):
    img = cv2.resize(hopper, (64, 64))
    assert np.array_equal((merge.sharpen(img, 0) * 255).round().astype(np.uint8), img)
    lap = lambda a: np.abs(cv2.Laplacian(a.astype(np.float32), cv2.CV_32F)).mean()  # noqa: E731
    assert lap(merge.sharpen(img, 1.5) * 255) > 1.3 * lap(img)


def test_warp_back_inverts_the_crop(astronaut):
    pts = synthetic_landmarks(260.0, 200.0, 160.0)
    size = 128
    m = align.crop_matrix(pts, size)
    crop = align.warp_to_crop(astronaut, m, size)
    roi = merge.roi_around(pts, 0, astronaut.shape)
    back = merge.warp_back(crop, m, roi)
    x0, y0, x1, y1 = roi
    inside = align.landmark_mask(pts - [x0, y0], (y1 - y0, x1 - x0)) > 0
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    err = np.abs(back.astype(int) - astronaut[y0:y1, x0:x1].astype(int))[inside]
    assert err.mean() < 12  # a 128-px crop of a ~160-px face: resampling blur, not misplacement
    shifted = np.abs(np.roll(back, 6, axis=1).astype(int) - astronaut[y0:y1, x0:x1].astype(int))[inside]
    assert err.mean() < 0.6 * shifted.mean()


def test_face_near_the_frame_edge_and_off_frame(scene):
    frame, _, _, _ = scene
    pts = synthetic_landmarks(20.0, 30.0, 150.0)  # partly outside the frame
    m = align.crop_matrix(pts, 64)
    original = align.warp_to_crop(frame, m, 64)
    out = merge.merge_face(frame.copy(), np.ones((64, 64, 3), np.float32), original, m, pts,
                           merge.MergeOptions(color="none"))
    assert out.shape == frame.shape and not np.array_equal(out, frame)
    far = synthetic_landmarks(-900.0, -900.0, 100.0)  # entirely outside: nothing to do
    mf = align.crop_matrix(far, 64)
    out2 = merge.merge_face(frame.copy(), np.ones((64, 64, 3), np.float32), original, mf, far, merge.MergeOptions())
    assert np.array_equal(out2, frame)


def test_options_are_validated():
    with pytest.raises(ValueError, match="color"):
        merge.MergeOptions(color="sepia")
    with pytest.raises(ValueError, match="blend"):
        merge.MergeOptions(blend="overlay")
    with pytest.raises(ValueError, match="erode"):
        merge.MergeOptions(erode=-1)
