"""The pair finder (core.fit.measures, core.fit.job, `facepair fit`) on real faces found by real dlib.

Without ../shared/data the astronaut and Grace Hopper portraits and synthetic clips are used;
with it, the three people's photos and the Hamilton clip.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.fit import job as fit_job
from core.fit import measures as fit
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.media import read as media
from core.media.write import write_video
from core.project.projects import add_sources, create_project

ROOT = Path(__file__).resolve().parent.parent


# ---- helpers ------------------------------------------------------------------------------------

def _write(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _rotate_scale(img: np.ndarray, angle: float, scale: float) -> np.ndarray:
    """The image rotated by `angle` degrees (counter-clockwise) and scaled, on a canvas scaled alike."""
    h, w = img.shape[:2]
    out_w, out_h = int(w * scale), int(h * scale)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[0, 2] += (out_w - w) / 2
    m[1, 2] += (out_h - h) / 2
    return cv2.warpAffine(img, m, (out_w, out_h), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_CONSTANT)


def _pair(home: Path, name: str, b_paths: list) -> object:
    p = create_project(home, name, "Footage", "Bee", "Test people agreed; public test images only.")
    if b_paths:
        add_sources(p, "b", [str(x) for x in b_paths])
    return p


def _rows_for(result: dict, path) -> list[dict]:
    return [r for r in result["rows"] if r["candidate"] == str(Path(path).resolve())]


@pytest.fixture(scope="module")
def astro_faces(astronaut) -> fit_job.Faces:
    faces = fit_job._find([media.Frame(0, astronaut)], False, "hog")
    assert len(faces) == 1
    return faces


# ---- pure maths ---------------------------------------------------------------------------------

def test_core_fit_imports_no_heavy_library():
    code = ("import sys, core.fit.measures, core.fit.job, tui.cli.commands.fit; "
            "bad = [m for m in ('dlib', 'cv2', 'jax', 'textual') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_shape_measures_ignore_position_scale_and_in_plane_rotation(astro_faces):
    lm = astro_faces.landmarks[0].astype(np.float64)
    base_f, base_c, base_p = fit.features(lm), fit.jaw_contour(lm), fit.estimate_pose(lm)
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, s = rng.uniform(-math.pi, math.pi), rng.uniform(0.2, 5.0)
        r = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        moved = lm @ r.T + rng.uniform(-500, 500, 2)
        np.testing.assert_allclose(fit.features(moved), base_f, rtol=1e-9)
        np.testing.assert_allclose(fit.jaw_contour(moved), base_c, atol=1e-9)
        pose = fit.estimate_pose(moved)
        np.testing.assert_allclose(pose[:2], base_p[:2], atol=1e-6)  # yaw, pitch unchanged
        roll = (pose[2] - base_p[2] - math.degrees(a) + 180) % 360 - 180
        assert abs(roll) < 1e-6  # the roll turns with the image


def test_pose_estimate_recovers_the_pose_of_a_projected_model():
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(200):
        truth = np.array([rng.uniform(-45, 45), rng.uniform(-30, 30), rng.uniform(-40, 40)])
        pts = fit.project_model(*truth, scale=120, offset=(320, 240))
        pts += rng.normal(0, 1.2, pts.shape)  # ~1 % of the face's size, like dlib's jitter
        errors.append(np.abs(np.array(fit.pose_from_points(pts)) - truth))
    errors = np.array(errors)
    assert errors.mean(axis=0).max() < 2.5, errors.mean(axis=0)
    assert errors.max() < 10


def test_mirrored_face_has_opposite_yaw(astro_faces, astronaut):
    flipped = fit_job._find([media.Frame(0, np.ascontiguousarray(astronaut[:, ::-1]))], False, "hog")
    yaw, pitch, _ = fit.estimate_pose(astro_faces.landmarks[0])
    yaw_m, pitch_m, _ = fit.estimate_pose(flipped.landmarks[0])
    assert abs(yaw + yaw_m) < 3 and abs(pitch - pitch_m) < 3


def test_compare_is_symmetric_and_names_the_differences(astro_faces, hopper):
    other = fit_job._find([media.Frame(0, hopper)], False, "hog")
    a, b = fit.profile(astro_faces.landmarks), fit.profile(other.landmarks)
    ab, ba = fit.compare(a, b), fit.compare(b, a)
    assert ab.score == pytest.approx(ba.score, abs=1e-9)
    assert fit.compare(a, a).score == pytest.approx(100.0)
    assert ab.score < 80
    # Words describe the candidate relative to B: reversed roles give the opposite word.
    top = ab.top(3)
    assert 1 <= len(top) <= 3
    for d in top:
        rev = next(x for x in ba.differences if x.feature == d.feature)
        assert rev.log_ratio == pytest.approx(-d.log_ratio) or d.feature == fit.CONTOUR.name
        assert "%" in d.words


def test_describe_in_plain_words():
    jaw = next(f for f in fit.FEATURES if f.name == "jaw_width")
    assert fit.describe(jaw, math.log(1.09)) == "jaw 9% wider"
    eyes = next(f for f in fit.FEATURES if f.name == "eye_spacing")
    assert fit.describe(eyes, math.log(0.95)) == "eyes 5% closer together"


def test_pose_coverage_counts_candidate_poses_near_b():
    b = np.array([[0.0, 0.0], [20.0, 0.0]])
    c = np.array([[2.0, 1.0], [19.0, -3.0], [45.0, 0.0], [-30.0, 5.0]])
    assert fit.pose_coverage(b, c) == 0.5
    assert math.isnan(fit.pose_coverage(b, np.zeros((0, 2))))
    assert fit.pose_coverage(np.zeros((0, 2)), c) == 0.0


def _average_linkage_by_brute_force(d: np.ndarray, threshold: float) -> list[list[int]]:
    groups = [[i] for i in range(len(d))]
    while len(groups) > 1:
        best, pair = np.inf, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                v = np.mean([np.linalg.norm(d[x] - d[y]) for x in groups[a] for y in groups[b]])
                if v < best:
                    best, pair = v, (a, b)
        if best >= threshold:
            break
        groups[pair[0]] += groups.pop(pair[1])
    return sorted(sorted(g) for g in groups)


def test_group_people_is_average_linkage_that_keeps_tracks_together():
    for seed in range(10):
        rng = np.random.default_rng(seed)
        d = rng.normal(0, 0.3, (24, 4)) + rng.normal(0, 1, (3, 4))[rng.integers(0, 3, 24)]
        labels = fit.group_people(d, threshold=1.0)
        got = sorted(sorted(np.flatnonzero(labels == k).tolist()) for k in range(labels.max() + 1))
        assert got == _average_linkage_by_brute_force(d, 1.0)
        assert np.bincount(labels).tolist() == sorted(np.bincount(labels).tolist(), reverse=True)
    # A track is one person even when its faces' descriptors disagree, and votes with their mean;
    # a face with no descriptor and no track stays alone.
    d = np.array([[0.0, 0], [5, 5], [2.4, 2.5], [np.nan, np.nan]])
    labels = fit.group_people(d, tracks=[7, 7, -1, -1], threshold=1.0)
    assert labels[0] == labels[1] == labels[2] and labels[3] != labels[0]


def test_clip_starts_spread_over_the_whole_video():
    starts = fit_job.clip_starts(10_000, frames=120, clip=6)
    assert len(starts) == 20 and starts[0] == 0 and starts[-1] == 10_000 - 6
    assert np.all(np.diff(starts) > 6)
    assert fit_job.clip_starts(30, frames=120, clip=6) == [0, 6, 12, 18, 24]


# ---- the job on portraits (no shared data) -----------------------------------------------------------

def test_astronaut_rotated_and_scaled_scores_as_itself(home, tmp_path, astronaut, hopper):
    b = _write(tmp_path / "b" / "astronaut.png", astronaut)
    project = _pair(home, "astro", [b])
    variants = {"same": _write(tmp_path / "c" / "same.png", astronaut)}
    for angle in (-20, 20):
        for scale in (0.5, 2.0):
            variants[f"{angle}_{scale}"] = _write(tmp_path / "c" / f"rot{angle}_x{scale}.png",
                                                  _rotate_scale(astronaut, angle, scale))
    other = _write(tmp_path / "c" / "hopper.png", hopper)
    result = fit_job.rank(project, [str(p) for p in [*variants.values(), other]])
    scores = {k: _rows_for(result, p)[0]["score"] for k, p in variants.items()}
    hopper_score = _rows_for(result, other)[0]["score"]
    assert scores["same"] >= 99.5
    assert min(scores.values()) >= 85, scores
    assert hopper_score < min(scores.values()) - 15, (hopper_score, scores)
    assert result["rows"][-1]["candidate"] == str(other.resolve()) and result["rows"][-1]["rank"] == len(variants) + 1


def test_no_face_and_unreadable_candidates_are_listed_not_fatal(home, tmp_path, astronaut):
    project = _pair(home, "bad", [_write(tmp_path / "astronaut.png", astronaut)])
    grey = np.full((240, 320, 3), 128, np.uint8)
    blank = _write(tmp_path / "blank.png", grey)
    folder = tmp_path / "empty_faces"
    for i in range(3):
        _write(folder / f"{i}.png", grey)
    video = write_video(tmp_path / "wall.mp4", [grey] * 12, fps=12)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 this is not a jpeg")
    job = jobs.run_inline(project, "fit", {"candidates": [str(blank), str(folder), str(video), str(corrupt)],
                                           "frames": 12})
    assert job.state == "succeeded", job.reason
    rows = {Path(r["candidate"]).name: r for r in job.result["rows"]}
    for name in ("blank.png", "empty_faces", "wall.mp4"):
        assert rows[name]["status"] == fit_job.NO_FACE and rows[name]["score"] is None
        assert fit_job.NO_FACE in rows[name]["message"]
    assert rows["wall.mp4"]["message"] == "no face found in 12 sampled frames"
    assert rows["corrupt.jpg"]["status"] == fit_job.UNREADABLE and "corrupt.jpg" in rows["corrupt.jpg"]["message"]
    texts = [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]
    assert any("blank.png: no face found" in t for t in texts)


def test_two_people_in_one_picture_are_scored_separately(home, tmp_path, astronaut, hopper):
    h = cv2.resize(hopper, (int(hopper.shape[1] * 512 / hopper.shape[0]), 512))
    both = _write(tmp_path / "both.png", np.hstack([astronaut, h]))
    project = _pair(home, "two", [_write(tmp_path / "astronaut.png", astronaut)])
    rows = fit_job.rank(project, [str(both)])["rows"]
    assert sorted(r["person"] for r in rows) == [1, 2]
    assert rows[0]["score"] >= 90 and rows[1]["score"] < 80  # the astronaut fits herself best


def test_b_without_faces_is_a_clear_error(home, tmp_path, astronaut):
    none = _pair(home, "nob", [])
    with pytest.raises(fit_job.FitError, match="add-source nob b"):
        fit_job.rank(none, [str(_write(tmp_path / "a.png", astronaut))])
    blank = _pair(home, "blankb", [_write(tmp_path / "grey.png", np.full((200, 200, 3), 90, np.uint8))])
    with pytest.raises(fit_job.FitError, match="no face found in the sources of side B"):
        fit_job.rank(blank, [str(tmp_path / "a.png")])
    with pytest.raises(fit_job.FitError, match="no such file"):
        fit_job.rank(blank, [str(tmp_path / "missing.mp4")])
    with pytest.raises(fit_job.FitError, match="--frames"):
        fit_job.rank(blank, [str(tmp_path / "a.png")], frames=0)


def test_fit_job_ranks_side_a_sources_for_the_project_screen(extracted_project_copy):
    """B from faces/b (the extraction's crops), A's extracted source from faces/a; cached in fit.json."""
    p = extracted_project_copy
    assert fit_job.rank_project_sources(p)[0]["status"] == "not ranked"
    job = jobs.run_inline(p, "fit", {})
    assert job.state == "succeeded", job.reason
    result = job.result
    assert result["b"]["origin"] == "extraction" and result["b"]["faces"] == p.face_count("b")
    (row,) = result["rows"]
    assert row["candidate"] == p.sources_of("a")[0].path and row["faces"] == p.face_count("a")
    assert 0 <= row["score"] < 80  # the astronaut is not Grace Hopper
    assert 1 <= len(row["differences"]) <= 3 and all(d["words"] for d in row["differences"])
    assert 0 <= row["coverage"] <= 1 and len(row["yaw"]) == 2
    assert (p.root / fit_job.CACHE_FILE).is_file()
    shown = fit_job.rank_project_sources(p)
    assert [r["score"] for r in shown] == [row["score"]] and shown[0]["stale"] is False
    events = read_events(job.events_path)
    assert [e for e in events if e["type"] == "summary"][-1]["best"] == row["candidate"]
    # B's faces change (a crop deleted): the cached ranking is marked stale, not dropped.
    next(p.faces_dir("b").glob("*.png")).unlink()
    assert fit_job.rank_project_sources(p)[0]["stale"] is True


def test_cli_ranks_b_own_footage_first_with_full_pose_coverage(extracted_project_copy, synth_clips, tmp_path,
                                                               monkeypatch):
    from rich.console import Console

    from tui.cli.commands import fit as fit_cmd

    p = extracted_project_copy
    blank = _write(tmp_path / "blank.png", np.full((120, 160, 3), 60, np.uint8))
    env = {**os.environ, "FACEPAIR_HOME": str(p.home)}
    cmd = [sys.executable, "-m", "tui.cli.main", "fit", p.name, "--frames", "12", "--json", "--candidates",
           str(synth_clips["astronaut"]), str(synth_clips["hopper"]), str(blank)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # progress went to stderr
    best, second, last = result["rows"]
    assert Path(best["candidate"]).name == "hopper.mp4" and best["rank"] == 1  # B's own footage
    assert best["score"] >= 85 and best["coverage"] >= 0.8
    assert Path(second["candidate"]).name == "astronaut.mp4" and second["score"] < best["score"] - 15
    assert last["status"] == fit_job.NO_FACE and last["rank"] is None
    # The table `facepair fit` prints without --json.
    monkeypatch.setattr(fit_cmd, "console", Console(record=True, width=200))
    fit_cmd.print_ranking(result)
    text = fit_cmd.console.export_text()
    assert "B = Hopper" in text and "hopper.mp4" in text and "no face found" in text
    assert best["differences"][0]["words"] in text
    bad = subprocess.run(cmd[:-3] + [str(tmp_path / "nope.mp4")], capture_output=True, text=True, cwd=ROOT,
                         env=env, timeout=60)
    said = " ".join(bad.stderr.split())  # rich wraps long lines
    assert bad.returncode == 2 and "nope.mp4: no such file" in said and "Traceback" not in said


# ---- real people (../shared/data) -------------------------------------------------------------------

@pytest.fixture(scope="module")
def hamilton(shared_data) -> fit_job.Faces:
    faces, examined, _ = fit_job.find_in_media(shared_data / "video" / "short_hamilton_clip.mp4", frames=60)
    assert examined == 60 and len(faces) > 20
    return faces


@pytest.mark.shared_data
def test_a_person_ranks_first_against_held_out_photos_of_themselves(home, shared_data):
    f = shared_data / "faces"
    alex = _pair(home, "alex", [f / "alex-lacamoire" / "1.png", f / "alex-lacamoire" / "2.jpg"])
    ranked = fit_job.rank(alex, [str(f / "alex-lacamoire" / "3.jpg"), str(f / "rose-leslie"),
                                 str(f / "lin-manuel-miranda" / "1.png")])["rows"]
    assert Path(ranked[0]["candidate"]).name == "3.jpg", [(r["name"], r["score"]) for r in ranked]
    rose = _pair(home, "rose", [f / "rose-leslie" / "1.jpg"])
    ranked = fit_job.rank(rose, [str(f / "rose-leslie" / "2.jpg"), str(f / "alex-lacamoire"),
                                 str(f / "lin-manuel-miranda" / "1.png")])["rows"]
    assert Path(ranked[0]["candidate"]).name == "2.jpg", [(r["name"], r["score"]) for r in ranked]


@pytest.mark.shared_data
def test_scores_are_symmetric_between_two_people(home, shared_data):
    """Through the whole job (B from B's source, the candidate sampled) within 1 point."""
    f = shared_data / "faces"
    people = [f / "alex-lacamoire" / "3.jpg", f / "rose-leslie" / "1.jpg", f / "lin-manuel-miranda" / "1.png"]
    score = {}
    for i, x in enumerate(people):
        project = _pair(home, f"sym{i}", [x])
        for y in people:
            if y != x:
                score[x, y] = _rows_for(fit_job.rank(project, [str(y)]), y)[0]["score"]
    for (x, y), s in score.items():
        assert abs(s - score[y, x]) <= 1.0, (x.name, y.name, s, score[y, x])


@pytest.mark.shared_data
def test_several_people_in_a_video_are_scored_separately(shared_data, hamilton):
    """The clip cuts from the singer (Lin-Manuel Miranda) to the audience."""
    lin = fit_job._find([media.Frame(0, media.read_image(shared_data / "faces" / "lin-manuel-miranda" / "1.png"))],
                        False, "hog")
    rows = fit_job.score_people(fit.profile(lin.landmarks), hamilton)
    assert [r["person"] for r in rows] == [1, 2]
    assert rows[0]["faces"] > rows[1]["faces"]  # the singer is on screen most
    assert rows[0]["score"] > rows[1]["score"] + 15  # and his portrait fits him, not the audience


@pytest.mark.shared_data
def test_pose_coverage_follows_the_yaw_estimate(shared_data, hamilton):
    """B = the singer's faces turned to the left; held-out faces at those poses are covered, the same
    frames mirrored (turned to the right, measured again from pixels) are not."""
    singer = hamilton.select(fit.group_people(hamilton.descriptors, hamilton.tracks) == 0)
    poses = fit.estimate_pose(singer.landmarks)
    left = np.flatnonzero(poses[:, 0] <= -20)
    assert len(left) >= 6, poses[:, 0]
    b_rows, own_rows = left[::2], left[1::2]
    b = fit.profile(singer.landmarks[b_rows])
    own = fit.profile(singer.landmarks[own_rows])
    frames = set(singer.frames[b_rows].tolist())
    video = shared_data / "video" / "short_hamilton_clip.mp4"
    mirrored = [media.Frame(fr.index, np.ascontiguousarray(fr.image[:, ::-1]))
                for fr in media.iter_frames(video, stop=max(frames) + 1) if fr.index in frames]
    turned = fit_job._find(mirrored, False, "hog")
    assert len(turned) >= len(frames) // 2
    far = fit.profile(turned.landmarks)
    assert far.poses[:, 0].min() > 10  # the estimate sees them turned the other way
    assert fit.compare(b, own).coverage >= 0.8
    assert fit.compare(b, far).coverage <= 0.2
