"""Fixing frames: `facepair missing` lists the frames an extraction left without a face (and where a
track was lost), `facepair extract --redo-missing` re-detects just those.

Real dlib on real pixels: 20 frames of the shared talking clip d18 at 240×240, of which frames
8–12 show the face shrunk to 0.4× in the frame's corner (about 47 px, the rest of the frame dark):
an extraction with --min-face 80 finds no face there (HOG's window then cannot see it, and the
tracker loses the face when it jumps), a redo with --min-face 40 does. Side B is a folder of three
stills of the same clip, the middle one small. Extracted once per module; each test works on a copy.
The store logic (runs, every, two people, the gap limit) is also tested on stores written by hand.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tui.cli.main import main

SIZE = 240
SMALL = range(8, 13)  # frames whose face is small
SMALL_SCALE = 96  # px: the whole frame shrunk to this, in the top-left corner
FPS = 30.0
MIN_FACE_FIRST, MIN_FACE_REDO = 80, 40


def _shrunk(image: np.ndarray) -> np.ndarray:
    import cv2

    out = np.full_like(image, 16)
    out[8:8 + SMALL_SCALE, 8:8 + SMALL_SCALE] = cv2.resize(image, (SMALL_SCALE, SMALL_SCALE),
                                                           interpolation=cv2.INTER_AREA)
    return out


def _test_frames(shared_data: Path) -> list[np.ndarray]:
    import cv2

    from core.media.read import iter_frames

    frames = []
    for fr in iter_frames(shared_data / "talking" / "d18.mp4", stop=20):
        image = cv2.resize(fr.image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        frames.append(_shrunk(image) if fr.index in SMALL else image)
    return frames


@pytest.fixture(scope="module")
def redo_home(shared_data, tmp_path_factory) -> Path:
    """Project 'fix' extracted with --min-face 80: side A the clip, side B three stills."""
    from core.jobs import control as jobs
    from core.media.write import write_image, write_video
    from core.project.projects import add_sources, create_project

    d = tmp_path_factory.mktemp("redo_media")
    frames = _test_frames(shared_data)
    clip = write_video(d / "clip.mp4", frames, FPS)
    stills = d / "stills"
    stills.mkdir()
    for i, frame in enumerate((frames[0], frames[10], frames[19])):
        write_image(stills / f"{i:02d}.png", frame)
    home = tmp_path_factory.mktemp("redo_home")
    project = create_project(home, "fix", "Man", "Man again", "Public test clip (LivePortrait examples); tests only.")
    add_sources(project, "a", [clip])
    add_sources(project, "b", [stills])
    job = jobs.run_inline(project, "extract", {"min_face": MIN_FACE_FIRST, "size": 64, "workers": 1})
    assert job.state == "succeeded", job.reason
    return home


@pytest.fixture
def project(redo_home, tmp_path, monkeypatch):
    from core.project.projects import load_project

    home = tmp_path / "home"
    shutil.copytree(redo_home, home, symlinks=True)
    monkeypatch.setenv("FACEPAIR_HOME", str(home))
    return load_project(home, "fix")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def missing_json(capsys, *argv) -> dict[str, dict]:
    code, out, _ = run(capsys, "missing", "fix", "--json", *argv)
    assert code == 0
    return {s["side"]: s for s in json.loads(out)["sources"]}


def store_of(project, side: str):
    from core.faces import alignments as store

    return store.load_for_source(project, project.sources_of(side)[0].id)


def kept_frames(a) -> set[int]:
    return set(a.face_frame[a.status == 0].tolist())


def redo(project, **args):
    from core.jobs import control as jobs

    job = jobs.run_inline(project, "extract", {"redo_missing": True, "workers": 1, **args})
    assert job.state == "succeeded", job.reason
    return job


# ---- listing ---------------------------------------------------------------------------------------

def test_missing_lists_the_frames_without_a_face_and_the_lost_track(project, capsys):
    sources = missing_json(capsys)
    a = sources["a"]
    assert a["state"] == "listed" and a["kind"] == "video" and a["frames"] == 20 and a["fps"] == FPS
    assert [(r["start"], r["end"], r["count"]) for r in a["no_face"]] == [(8, 12, 5)]
    run_ = a["no_face"][0]
    assert run_["start_s"] == pytest.approx(8 / FPS, abs=1e-3) and run_["end_s"] == pytest.approx(12 / FPS, abs=1e-3)
    assert [(r["start"], r["end"]) for r in a["lost"]] == [(8, 12)]
    before, after = a["lost"][0]["tracks"]
    st = store_of(project, "a")
    assert set(st.track[st.face_frame < 8].tolist()) == {before}
    assert set(st.track[st.face_frame > 12].tolist()) == {after}
    assert a["to_redo"] == 5

    b = sources["b"]  # stills: the small one by name, no tracks
    assert b["kind"] == "folder" and b["lost"] == []
    assert [(r["start"], r["names"]) for r in b["no_face"]] == [(1, ["01.png"])]
    assert b["no_face"][0]["start_s"] is None

    code, out, _ = run(capsys, "missing", "fix", "--side", "a")
    assert code == 0 and "8–12" in out and "lost track" in out and "--redo-missing" in out
    assert set(missing_json(capsys, "--side", "b")) == {"b"}


# ---- the redo ----------------------------------------------------------------------------------------

def test_redo_missing_finds_the_faces_hog_missed_and_appends_a_part(project, capsys):
    from core.faces import curation

    before = store_of(project, "a")
    spath = before.path
    parts = {p.name: p.read_bytes() for p in spath.glob("part-*.npz")}
    code, out, _ = run(capsys, "extract", "fix", "--redo-missing", "--min-face", str(MIN_FACE_REDO))
    assert code == 0, out
    assert "side a: 5 of 5 frames without a face got one" in out
    assert "side b: 1 of 1 frames without a face got one" in out

    after = store_of(project, "a")
    assert kept_frames(after) == set(range(20))
    for name, data in parts.items():  # the earlier parts are as they were; new ones (one every 5 s) beside them
        assert (spath / name).read_bytes() == data
    parts_now = sorted(p.name for p in spath.glob("part-*.npz"))
    assert len(parts_now) > len(parts)
    old = np.isin(after.face_frame, before.face_frame)
    for key in ("face_index", "landmarks", "matrix", "status", "track", "blur"):
        np.testing.assert_array_equal(after.faces[key][old], before.faces[key])
    new = ~old
    assert sorted(after.face_frame[new].tolist()) == list(SMALL)
    assert not set(after.track[new].tolist()) & set(before.track.tolist())  # new tracks
    sizes = after.box[new, 2] - after.box[new, 0]
    assert (sizes < MIN_FACE_FIRST).all() and (sizes >= MIN_FACE_REDO * 0.9).all()

    for f in SMALL:  # a crop like any other, named as usual, scored like any other
        assert (project.faces_dir("a") / after.name(after.row(f, 0))).is_file()
    table = curation.face_table(project, "a")
    recovered = np.isin(table.columns["frame"], list(SMALL))
    assert recovered.sum() == 5
    for key in ("blur", "yaw", "pitch", "size", "identity"):
        assert np.isfinite(table.columns[key][recovered]).all(), key
    assert (table.columns["identity"][recovered] < 0.6).all()  # the same man
    assert (table.columns["size"][recovered] < table.columns["size"][~recovered].min() / 2).all()
    assert "01.png" not in json.dumps(missing_json(capsys)["b"]["no_face"])
    assert missing_json(capsys)["a"]["to_redo"] == 0

    # Nothing is missing now: a second redo changes nothing and says so.
    code, out, _ = run(capsys, "extract", "fix", "--side", "a", "--redo-missing", "--min-face", str(MIN_FACE_REDO))
    assert code == 0 and "side a: nothing to redo: every frame of its 1 extracted source has a face" in out
    assert sorted(p.name for p in spath.glob("part-*.npz")) == parts_now


def test_redo_with_the_cnn_detector(project):
    # Side B's small still (the CNN takes seconds a frame on a CPU: one frame is enough).
    job = redo(project, side="b", detector="cnn", min_face=MIN_FACE_REDO)
    summ = job.result["sides"]["b"]
    assert summ["frames"] == 1 and summ["recovered"] == 1 and summ["faces_kept"] == 1
    b = store_of(project, "b")
    assert kept_frames(b) == {0, 1, 2}
    assert (project.faces_dir("b") / b.name(b.row(1, 0))).is_file()


def test_fresh_with_redo_missing_is_refused(project, capsys):
    jobs_before = set(project.runs_dir.glob("*/job.json"))
    code, _, err = run(capsys, "extract", "fix", "--redo-missing", "--fresh")
    assert code == 2 and "--redo-missing" in err and "--fresh" in err and "one or the other" in err
    assert set(project.runs_dir.glob("*/job.json")) == jobs_before  # refused before a job started
    from core.jobs import control as jobs

    job = jobs.run_inline(project, "extract", {"redo_missing": True, "fresh": True})  # the job refuses it too
    assert job.state == "failed" and "one or the other" in job.reason
    assert len(store_of(project, "a").frames) == 20  # nothing was forgotten


def test_a_removed_face_stays_removed_after_a_redo(project, capsys):
    from core.faces import curation, trash
    from core.faces.faceset import load_faceset

    a = store_of(project, "a")
    name = a.name(a.row(3, 0))
    curation.remove_faces(project, "a", [name])
    listed = missing_json(capsys, "--side", "a")["a"]
    assert [(r["start"], r["end"], r["dropped"]) for r in listed["no_face"]] == [(3, 3, {"removed": 1}), (8, 12, {})]

    job = redo(project, side="a", min_face=MIN_FACE_REDO)
    summ = job.result["sides"]["a"]
    assert summ["still_removed"] == 1 and summ["recovered"] == 5
    after = store_of(project, "a")
    rows = after.faces_in(3)
    assert len(rows) == 1 and after.status[rows[0]] == 4  # found again, not added, still removed
    assert not (project.faces_dir("a") / name).exists() and trash.crop_file(project, "a", name) is not None
    assert kept_frames(after) == set(range(20)) - {3}
    faces = load_faceset(project, "a")
    assert name not in faces.names and len(faces) == 19
    assert curation.restore_faces(project, "a", [name]).restored == [name]  # and it can still come back


# ---- the store logic, on stores written by hand --------------------------------------------------

def _face(x: float, status: int = 0, track: int = 0):
    from core.faces import alignments as store

    box = np.array([x, 100, x + 60, 160], np.float32)
    lms = np.zeros((68, 2), np.float32)
    return store.Face(box=box, score=1.0, landmarks=lms, landmarks_raw=lms, matrix=np.eye(2, 3), size=64,
                      coverage=2.0, status=status, track=track)


def _store(tmp_path, frames: dict[int, list], every: int = 1):
    from core.faces import alignments as store

    w = store.Writer(tmp_path / "s.fpa", {"source": {"id": "s"}, "settings": {"every": every, "size": 64}})
    for f, faces in frames.items():
        w.add(f, faces)
    w.flush()
    return store.load(tmp_path / "s.fpa")


def test_runs_with_two_people_every_other_frame_and_the_gap_limit(tmp_path):
    from core.extract import missing

    left, right = 0, 300  # two people, far apart
    frames: dict[int, list] = {}
    for f in range(0, 80, 2):  # every 2nd frame of the video was extracted
        faces = []
        if f <= 10 or 16 <= f <= 28 or f >= 34:  # left: lost at 12–14 (new track from 16) and at 30–32
            faces.append(_face(left, track=0 if f <= 10 else 2 if f <= 28 else 4))
        if f < 30 or f >= 34:  # right: too small at 20–22 (same track), gone at 30–32
            faces.append(_face(right, status=1 if f in (20, 22) else 0, track=1 if f < 30 else 3))
        frames[f] = faces
    frames[70], frames[72] = [_face(left, track=4)], [_face(left, track=4)]  # right gone 70…; back at 74 far away
    for f in range(74, 80, 2):
        frames[f] = [_face(left, track=4), _face(150, track=5)]
    m = missing.find_missing(_store(tmp_path, frames, every=2), "video", fps=10.0)

    assert [(r.start, r.end, r.count) for r in m.no_face] == [(30, 32, 2)]
    assert m.no_face[0].as_dict()["start_s"] == 3.0
    lost = [(r.start, r.end, r.tracks, r.dropped) for r in m.lost]
    assert lost == [(12, 14, (0, 2), {}), (20, 22, (1, 1), {"small": 2}), (30, 32, (1, 3), {}), (30, 32, (2, 4), {})]
    assert m.to_redo() == [12, 14, 20, 22, 30, 32]

    # A face gone longer than the gap limit is a new appearance, not a lost track.
    assert missing.lost_track_runs(_store(tmp_path / "x", {0: [_face(0)], 1: [], 2: [], 3: [_face(0, track=1)]}),
                                   fps=1.0, max_gap_s=1.0) == []
    runs = missing.lost_track_runs(_store(tmp_path / "y", {0: [_face(0)], 1: [], 2: [], 3: [_face(0, track=1)]}),
                                   fps=1.0, max_gap_s=2.0)
    assert [(r.start, r.end) for r in runs] == [(1, 2)]


def test_the_tui_extraction_dialog_refuses_redo_with_fresh_before_any_job(project):
    """The project screen's pre-check makes the CLI's checks: --redo-missing with --fresh is refused
    in the same words before the dialog starts a job."""
    from core.errors import FacepairError
    from core.extract.options import REDO_WITH_FRESH
    from tui.app.screens.project import check_extract_args

    with pytest.raises(FacepairError) as e:
        check_extract_args(project, {"side": "both", "fresh": True, "redo_missing": True})
    assert str(e.value) == REDO_WITH_FRESH
    assert check_extract_args(project, {"side": "both", "redo_missing": True})["redo_missing"] is True
