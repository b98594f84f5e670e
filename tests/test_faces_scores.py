"""The faces' scores on real photos (../shared/data) extracted by the real pipeline: in range, and
sorting as a person expects (a blurred copy is blurrier, a mirrored face turns the other way,
another person is the identity outlier), computed once and cached."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from core.faces import alignments as al
from core.faces import curation, scores

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def photo_side(shared_data, tmp_path_factory):
    """Side a = a portrait, its blurred copy, its mirror image and a photo of another person,
    extracted at 128 px (the blur measure's own scale) keeping every face (no blur or identity filter)."""
    import cv2

    from core.jobs import control as jobs
    from core.media.read import read_image
    from core.project.projects import add_sources, create_project

    src = tmp_path_factory.mktemp("photos")
    im = read_image(shared_data / "faces" / "lin-manuel-miranda" / "1.png")
    for name, pixels in {"lmm.png": im, "lmm-blurred.png": cv2.GaussianBlur(im, (0, 0), 2.5),
                         "lmm-mirrored.png": np.ascontiguousarray(im[:, ::-1])}.items():
        cv2.imwrite(str(src / name), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    shutil.copy(shared_data / "faces" / "alex-lacamoire" / "1.png", src / "other.png")
    project = create_project(tmp_path_factory.mktemp("home"), "photos", "Lin", "B", "test run on shared test media")
    add_sources(project, "a", sorted(src.iterdir()))
    job = jobs.run_inline(project, "extract", {"side": "a", "size": 128, "blur": 0, "identity": False, "workers": 1})
    assert job.state == "succeeded", job.reason
    return project


def _by_stem(project) -> dict[str, curation.FaceRecord]:
    """The side's faces by the file they came from ('lmm', 'lmm-blurred', …)."""
    ids = {s.id: s.path.rsplit("/", 1)[-1].removesuffix(".png") for s in project.sources_of("a")}
    return {ids[r.source]: r for r in curation.list_faces(project, "a")}


def test_every_score_is_in_range(photo_side):
    faces = _by_stem(photo_side)
    assert sorted(faces) == ["lmm", "lmm-blurred", "lmm-mirrored", "other"]
    for stem, r in faces.items():
        s = r.scores
        assert 0 < s["blur"] < 5000, (stem, s)
        assert abs(s["yaw"]) < 60 and abs(s["pitch"]) < 30 and abs(s["roll"]) < 20, (stem, s)
        assert 0 <= s["pose"] <= 60 and s["pose"] >= abs(s["yaw"]) - 1e-3, (stem, s)
        assert 0 <= s["identity"] < 1.5, (stem, s)
        assert 60 < s["size"] < 700, (stem, s)  # photos of 612-1548 px with one face each
        assert 0 < s["align"] < 0.15, (stem, s)
        assert s["change"] is None, (stem, s)  # stills have no previous face
    assert sorted(r.scores["order"] for r in faces.values()) == [0, 1, 2, 3]


def test_a_blurred_copy_sorts_as_blurrier(photo_side):
    listed = [r.name for r in curation.list_faces(photo_side, "a", sort="blur")]
    faces = _by_stem(photo_side)
    assert listed.index(faces["lmm-blurred"].name) < listed.index(faces["lmm"].name)
    assert faces["lmm-blurred"].scores["blur"] < 0.5 * faces["lmm"].scores["blur"]


def test_blur_score_measures_on_the_stored_scale(photo_side):
    """The fallback (a crop file, for stores without blur) agrees with what extraction stored, for
    crops of the measure's own size."""
    from core.faces.align import crop_landmarks
    from core.media.read import read_image

    for r in _by_stem(photo_side).values():
        a = al.load_for_source(photo_side, r.source)
        row = a.row(r.frame, r.face)
        measured = scores.blur_score(read_image(r.path), crop_landmarks(a.landmarks[row], a.matrix[row]))
        assert 0.8 < measured / r.scores["blur"] < 1.25, (r.name, measured, r.scores["blur"])


def test_a_mirrored_face_turns_the_other_way(photo_side):
    faces = _by_stem(photo_side)
    yaw, mirrored = faces["lmm"].scores["yaw"], faces["lmm-mirrored"].scores["yaw"]
    assert yaw > 15  # he looks to the image's right
    assert mirrored < -15 and abs(yaw + mirrored) < 5, (yaw, mirrored)
    assert abs(faces["lmm"].scores["pitch"] - faces["lmm-mirrored"].scores["pitch"]) < 5


def test_head_pose_signs_follow_the_landmarks(photo_side):
    """Rotating a face's landmarks clockwise on screen raises its roll by that angle."""
    a = al.load_for_source(photo_side, _by_stem(photo_side)["lmm"].source)
    lms = a.landmarks[0].astype(np.float64)
    c = lms.mean(axis=0)
    t = math.radians(20)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])  # clockwise with y down
    turned = (lms - c) @ rot.T + c
    roll0, roll1 = scores.head_pose(lms)[2], scores.head_pose(turned)[2]
    assert abs((roll1 - roll0) - 20) < 3, (roll0, roll1)


def test_another_person_is_the_identity_outlier(photo_side):
    faces = _by_stem(photo_side)
    first = curation.list_faces(photo_side, "a", sort="identity", descending=True)[0]
    assert first.name == faces["other"].name
    assert faces["other"].scores["identity"] > 0.5
    assert max(faces[s].scores["identity"] for s in ("lmm", "lmm-blurred", "lmm-mirrored")) < 0.4


def test_scores_are_cached_until_the_store_changes(photo_side, monkeypatch):
    curation.list_faces(photo_side, "a")  # computed (or read) once

    def refuse(*_a, **_k):
        raise AssertionError("scores were recomputed although no store changed")

    monkeypatch.setattr(scores, "_compute_source", refuse)
    again = curation.list_faces(photo_side, "a", sort="yaw")
    assert len(again) == 4
    sid = again[0].source
    meta = al.store_path(photo_side, sid) / al.META
    meta.write_bytes(meta.read_bytes())  # a rewritten store file: that source's cache is stale
    calls = []
    monkeypatch.setattr(scores, "_compute_source", lambda a, crop_of: calls.append(a.source_id) or refuse())
    with pytest.raises(AssertionError):
        curation.list_faces(photo_side, "a")
    assert calls == [sid]
