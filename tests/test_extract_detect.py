"""dlib detection, landmarks, descriptors (core.faces.detect) on real portraits."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from core.faces import align, detect

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_light_modules_do_not_import_dlib_or_cv2_eagerly():
    code = ("import sys, core.faces.detect, core.faces.align, core.faces.alignments, core.faces.faceset, core.media.read; "
            "bad = [m for m in ('dlib', 'cv2', 'jax', 'textual') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_hog_finds_the_astronaut_with_plausible_landmarks(astronaut):
    faces = detect.detect(astronaut)
    assert len(faces) >= 1
    d = faces[0]
    assert 60 < d.size < 160 and d.score > 0.5
    lm = detect.landmarks(astronaut, d)
    assert lm.shape == (68, 2) and lm.dtype == np.float32
    # Eyes above the nose tip above the mouth; all points near the box.
    eyes_y, nose_y, mouth_y = lm[36:48, 1].mean(), lm[30, 1], lm[48:68, 1].mean()
    assert eyes_y < nose_y < mouth_y
    assert (lm[:, 0] > d.left - 0.3 * d.size).all() and (lm[:, 0] < d.right + 0.3 * d.size).all()
    # The box the tracker derives from landmarks is close to the detector's own.
    assert detect.iou(detect.box_from_landmarks(lm), d) > 0.6


def test_min_face_rescales_detection(astronaut):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)  # face ≈ 47 px
    assert detect.detect_scale(small.shape, 40) == pytest.approx(2.0)
    assert detect.detect_scale(small.shape, 160) == pytest.approx(0.5)
    found = detect.detect(small, min_face=40)
    assert found and 35 < found[0].size < 65
    assert detect.detect(small, min_face=160) == []  # shrunk to a quarter: the face is too small


def test_image_larger_than_8k_is_downscaled_for_detection(astronaut):
    canvas = np.full((700, 8400, 3), 90, np.uint8)
    face = cv2.resize(astronaut, (1024, 1024))[100:700, :]  # face ≈ 190 px
    canvas[50:650, 6000:7024] = face
    assert detect.detect_scale(canvas.shape, 40) == pytest.approx(detect.MAX_DETECT_SIDE / 8400)
    found = detect.detect(canvas, min_face=40)
    assert found, "the face of a >8k image was not found"
    d = found[0]
    assert 6000 < d.left < d.right < 7024 and d.size > 120  # in full-resolution coordinates
    lm = detect.landmarks(canvas, d)
    assert 6000 < lm[:, 0].min() and lm[:, 0].max() < 7024


@pytest.mark.slow
def test_cnn_detector_agrees_with_hog(astronaut):
    hog = detect.detect(astronaut)[0]
    cnn = detect.detect(astronaut, "cnn", min_face=80)
    assert cnn and cnn[0].detector == "cnn"
    lm_hog = detect.landmarks(astronaut, hog)
    lm_cnn = detect.landmarks(astronaut, cnn[0])  # through predictor_box()
    assert np.linalg.norm(lm_hog - lm_cnn, axis=1).mean() < 3.0


def test_unknown_detector_is_refused(astronaut):
    with pytest.raises(detect.DetectorError, match="unknown detector 'yolo'"):
        detect.detect(astronaut, "yolo")


def test_face_score_separates_faces_from_non_faces(astronaut):
    d = detect.detect(astronaut)[0]
    lm = detect.landmarks(astronaut, d)
    assert detect.face_score(astronaut, lm) > 0.5
    # The same landmark shape moved onto the rocket / background scores low.
    moved = lm + np.array([250.0, 280.0], np.float32)
    assert detect.face_score(astronaut, moved) < 0.2
    # Rolled by 30°: the detector alone struggles, the upright re-score does not.
    rot = cv2.getRotationMatrix2D((256, 256), 30, 1.0)
    turned = cv2.warpAffine(astronaut, rot, (512, 512), borderMode=cv2.BORDER_CONSTANT)
    lm_turned = align.transform_points(lm, rot).astype(np.float32)
    assert detect.face_score(turned, lm_turned) > 0.5


@pytest.mark.slow
def test_descriptor_tells_people_apart(astronaut, hopper):
    lm_a = detect.landmarks(astronaut, detect.detect(astronaut)[0])
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    lm_f = detect.landmarks(flipped, detect.detect(flipped)[0])
    lm_h = detect.landmarks(hopper, detect.detect(hopper)[0])
    a, f, h = (detect.descriptor(img, lm) for img, lm in ((astronaut, lm_a), (flipped, lm_f), (hopper, lm_h)))
    assert a.shape == (128,) and a.dtype == np.float32
    assert detect.descriptor_distance(a, f) < detect.IDENTITY_THRESHOLD
    assert detect.descriptor_distance(a, h) > detect.IDENTITY_THRESHOLD
