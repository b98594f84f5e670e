"""Conversion end to end: real dlib faces, a real (tiny, briefly trained) JAX model, real H.264.

Inputs: the synthetic clips of the extraction fixtures (always) and ../shared/data (when present).
The project is a copy of `trained_project` (side A = the astronaut clip, side B = Grace Hopper).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.convert import pipeline as convert
from core.convert.sources import extracted_store, frames_detected
from core.faces import align
from core.faces import alignments as store
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.media import label
from core.media import read as media
from core.media import write as video_out
from core.media.probe import describe, ffmpeg_exe, probe
from core.media.write import write_video
from core.project.projects import load_project

ROOT = Path(__file__).resolve().parent.parent


# ---- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def conv_project(trained_project, tmp_path_factory):
    """A writable copy of the trained project for this module (outputs and jobs land in it)."""
    home = tmp_path_factory.mktemp("convert_home")
    shutil.copytree(trained_project.root, home / trained_project.name, symlinks=True)
    return load_project(home, trained_project.name)


@pytest.fixture(scope="module")
def clip_a(conv_project) -> Path:
    """Side A's source clip (extracted: its faces come from the alignments store)."""
    return Path(conv_project.sources_of("a")[0].path)


def _decode(path: Path) -> list[np.ndarray]:
    return [f.image for f in media.iter_frames(path)]


def _run(project, **args):
    job = jobs.run_inline(project, "convert", args)
    events = read_events(job.events_path)
    return job, events


def _messages(events, level=None) -> list[str]:
    return [e["text"] for e in events if e["type"] == "message" and (level is None or e["level"] == level)]


def _dilated_hulls(shape, landmark_sets, margin) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    for lm in landmark_sets:
        mask = np.maximum(mask, align.landmark_mask(lm, shape[:2]))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    return cv2.dilate(mask, k) > 0


def _label_region_changed(out: np.ndarray, ref: np.ndarray) -> float:
    x0, y0, x1, y1 = label.label_box(ref.shape)
    return float(np.abs(out[y0:y1, x0:x1].astype(int) - ref[y0:y1, x0:x1].astype(int)).mean())


@pytest.fixture(scope="module")
def store_conversion(conv_project, clip_a):
    """The extracted side-A clip converted with every face swapped, no visible label, lossless H.264
    (CRF 0: what changes outside the faces is then only the RGB ↔ YUV 4:2:0 rounding)."""
    out = conv_project.output_dir / "clip_all_nolabel.mp4"
    job, events = _run(conv_project, input=str(clip_a), output=str(out), faces="all", label=False, crf=0)
    assert job.state == "succeeded", job.reason
    return job, events, out


# ---- the output is a faithful, labelled video --------------------------------------------------------

def test_video_keeps_frames_rate_duration_audio_and_metadata(store_conversion, clip_a):
    job, events, out = store_conversion
    src, dst = describe(clip_a), describe(out)
    assert dst["frames"] == src["frames"] == job.result["frames"]
    assert dst["fps"] == pytest.approx(src["fps"], abs=0.01)
    assert abs(dst["duration"] - src["duration"]) <= 1.0 / src["fps"] + 1e-3
    assert [s["kind"] for s in dst["streams"]] == ["video", "audio"]
    assert "AI-generated" in dst["metadata"]["comment"] and dst["metadata"]["ai_generated"] == "true"
    assert label.c2pa_source_types(label.read_c2pa(out)) == [label.SOURCE_TYPE]
    assert job.result["faces_source"] == "alignments" and job.result["c2pa"] is True
    summary = [e for e in events if e["type"] == "summary"]
    assert summary and summary[-1]["frames"] == dst["frames"]


def test_no_label_is_recorded_and_leaves_the_corner_alone(store_conversion, clip_a):
    job, events, out = store_conversion
    assert job.result["visible_label"] is False
    assert any("OFF (--no-label)" in m for m in _messages(events, "warning"))
    for a, b in zip(_decode(clip_a), _decode(out), strict=True):
        assert _label_region_changed(b, a) < 4.0  # codec noise only


def test_pixels_outside_every_face_mask_are_unchanged(store_conversion, conv_project, clip_a):
    job, _, out = store_conversion
    a = store.load_for_source(conv_project, conv_project.sources_of("a")[0].id)
    src, dst = _decode(clip_a), _decode(out)
    swapped_inside = []
    for i, (s, d) in enumerate(zip(src, dst, strict=True)):
        lms = [a.landmarks[r] for r in a.faces_in(i)]
        diff = np.abs(s.astype(int) - d.astype(int)).max(axis=2)
        if not lms:
            assert diff.mean() < 2.0
            continue
        face_w = max(float(np.ptp(lm[:, 0])) for lm in lms)
        outside = ~_dilated_hulls(s.shape, lms, margin=int(np.ceil(0.08 * face_w)) + 3)
        # Lossless H.264: only the RGB → YUV 4:2:0 → RGB rounding remains (about one level).
        assert diff[outside].mean() < 2.0, f"frame {i}: outside the faces changed"
        assert np.percentile(diff[outside], 99) <= 4
        inside = _dilated_hulls(s.shape, lms, margin=0)
        inside = cv2.erode(inside.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        swapped_inside.append(diff[inside].mean())
    assert job.result["faces_swapped"] == len(a) > 0
    assert np.mean(swapped_inside) > 10  # the faces themselves did change


def test_visible_label_is_on_by_default_and_frames_without_faces_match_the_input(conv_project, tmp_path):
    """A clip whose middle frames hold no face: those frames equal the input (codec noise aside,
    away from the label), every frame carries the visible label; faces found on the fly."""
    from core.media import synth

    frames = synth.head_motion_frames(synth.astronaut(), frames=24, size=(320, 240), center=(220.0, 135.0),
                                      zoom=1.6, seed=5)
    blank = cv2.GaussianBlur(frames[0], (0, 0), 25)  # a face-less frame (a blurred background)
    for i in range(8, 16):
        frames[i] = blank
    src = tmp_path / "gap.mp4"
    write_video(src, frames, 24.0)
    out = tmp_path / "gap_out.mp4"
    job, _ = _run(conv_project, input=str(src), output=str(out), faces="all", crf=12)
    assert job.state == "succeeded", job.reason
    assert job.result["faces_source"] == "detected"
    s, d = _decode(src), _decode(out)
    assert len(d) == 24
    x0, y0, x1, y1 = label.label_box(s[0].shape)
    for i in range(24):
        assert _label_region_changed(d[i], s[i]) > 20, f"frame {i} has no visible label"
        diff = np.abs(s[i].astype(int) - d[i].astype(int)).max(axis=2)
        diff[y0:y1, x0:x1] = 0
        if 8 <= i < 16:  # codec noise only (decoding rounds each generation down by ~1 level)
            assert diff.mean() < 2.0 and np.percentile(diff, 99) <= 8, f"face-less frame {i} changed"
    assert job.result["frames_swapped"] >= 14  # the 16 frames with a face (a miss or two allowed)


def test_single_image_converts_with_all_three_labels(conv_project, tmp_path, astronaut):
    src = tmp_path / "astronaut.png"
    cv2.imwrite(str(src), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    job, _ = _run(conv_project, input=str(src), faces="all")
    assert job.state == "succeeded", job.reason
    out = Path(job.result["output"])
    assert out.parent == conv_project.output_dir and out.suffix == ".png"
    img = media.read_image(out)
    assert img.shape == astronaut.shape
    assert job.result["faces_swapped"] == 1
    from PIL import Image

    with Image.open(out) as im:
        assert "AI-generated" in im.text["Comment"]
    assert label.c2pa_source_types(label.read_c2pa(out)) == [label.SOURCE_TYPE]
    assert _label_region_changed(img, astronaut) > 20
    assert not (Path(out.parent) / f".{out.name}.partial-{os.getpid()}.png").exists()


@pytest.mark.parametrize("blend,mask", [("poisson", "hull"), ("feather", "learned")])
def test_blend_and_mask_options(conv_project, tmp_path, astronaut, blend, mask):
    src = tmp_path / "a.jpg"
    cv2.imwrite(str(src), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    out = tmp_path / f"a_{blend}_{mask}.jpg"
    job, _ = _run(conv_project, input=str(src), output=str(out), faces="all", blend=blend, mask=mask,
                  color="histogram", sharpen=0.5, label=False)
    assert job.state == "succeeded", job.reason
    img, ref = media.read_image(out), media.read_image(src)
    diff = np.abs(img.astype(int) - ref.astype(int)).max(axis=2)
    lms = [f.landmarks for f in next(frames_detected([media.Frame(0, ref)], video=False, workers=1)).faces]
    if mask == "hull":
        outside = ~_dilated_hulls(ref.shape, lms, 40)
        assert diff[_dilated_hulls(ref.shape, lms, 0)].mean() > 5  # the face was replaced
    else:  # the learned mask may reach anywhere in the model's crop, and nowhere else
        crop = np.zeros(ref.shape[:2], np.uint8)
        m = align.crop_matrix(lms[0], 32)
        cv2.fillConvexPoly(crop, np.round(align.transform_points(
            np.array([[0, 0], [31, 0], [31, 31], [0, 31]], float), align.invert(m))).astype(np.int32), 1)
        outside = cv2.dilate(crop, np.ones((31, 31), np.uint8)) == 0
    assert diff[outside].mean() < 2.5  # JPEG noise only


def test_faces_match_leaves_another_person_alone(conv_project, tmp_path, shared_data, astronaut):
    """A two-person image: the astronaut (side A's person) and a photo from ../shared/data/faces."""
    other = media.read_image(shared_data / "faces" / "alex-lacamoire" / "1.png")
    h = 400
    left = cv2.resize(astronaut[:400, 40:440], (h, h))
    right = cv2.resize(other, (int(other.shape[1] * h / other.shape[0]), h))
    pair = np.ascontiguousarray(np.concatenate([left, right], axis=1))
    src = tmp_path / "pair.png"
    cv2.imwrite(str(src), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
    found = next(frames_detected([media.Frame(0, pair)], video=False, workers=1)).faces
    assert len(found) == 2, "the test image must hold two detectable faces"
    by_x = sorted(found, key=lambda f: f.landmarks[:, 0].mean())
    results = {}
    for mode in ("match", "all"):
        out = tmp_path / f"pair_{mode}.png"
        job, _ = _run(conv_project, input=str(src), output=str(out), faces=mode, label=False)
        assert job.state == "succeeded", job.reason
        img = media.read_image(out)
        diff = np.abs(img.astype(int) - pair.astype(int)).max(axis=2)
        results[mode] = [float(diff[_dilated_hulls(pair.shape, [f.landmarks], 0)].mean()) for f in by_x]
        results[mode + "_job"] = job.result
    assert results["match_job"]["faces_swapped"] == 1 and results["match_job"]["faces_other"] == 1
    assert results["match"][0] > 5  # the astronaut got B's face
    assert results["match"][1] == 0.0  # the other person: not one pixel changed
    assert results["all_job"]["faces_swapped"] == 2 and results["all"][1] > 5


def test_preview_writes_the_frame_side_by_side(conv_project, clip_a):
    job = jobs.run_inline(conv_project, "preview", {"input": str(clip_a), "frame": 5, "faces": "all"})
    assert job.state == "succeeded", job.reason
    out = Path(job.result["output"])
    img = media.read_image(out)
    original = next(iter(media.iter_frames(clip_a, start=5, stop=6))).image
    assert img.shape == (original.shape[0], 2 * original.shape[1], 3)
    assert np.array_equal(img[:, : original.shape[1]], original)
    assert job.result["faces_swapped"] == 1
    assert [e["path"] for e in read_events(job.events_path) if e["type"] == "preview"] == [str(out)]


def test_start_end_trim_the_video_and_its_audio(conv_project, clip_a):
    out = conv_project.output_dir / "trim.mp4"
    job, _ = _run(conv_project, input=str(clip_a), output=str(out), start="0.25", end="1.0", faces="all")
    assert job.state == "succeeded", job.reason
    d = describe(out)
    assert d["frames"] == 18  # frames 6..23 at 24 fps
    assert [s["kind"] for s in d["streams"]] == ["video", "audio"]
    assert d["duration"] == pytest.approx(0.75, abs=0.1)


# ---- on ../shared/data -------------------------------------------------------------------------------

def test_the_shared_video_converts_with_its_frames_rate_duration_audio_and_labels(conv_project, shared_data):
    src = shared_data / "video" / "short_hamilton_clip.mp4"
    out = conv_project.output_dir / "hamilton.mp4"
    job, _ = _run(conv_project, input=str(src), output=str(out), faces="all")
    assert job.state == "succeeded", job.reason
    a, b = describe(src), describe(out)
    assert b["frames"] == a["frames"] == 275
    assert b["fps"] == pytest.approx(a["fps"], abs=0.01)
    frame = 1.0 / a["fps"]
    assert abs(b["duration"] - a["duration"]) <= frame + 0.011  # container ticks round to 10 ms
    assert abs((b["video_start"] or 0) - ((a["video_start"] or 0) - (a["start"] or 0))) <= frame  # A/V offset kept
    assert [s["kind"] for s in b["streams"]] == ["video", "audio"] and b["streams"][1]["codec"] == "aac"
    assert "AI-generated" in b["metadata"]["comment"]
    assert label.c2pa_source_types(label.read_c2pa(out)) == [label.SOURCE_TYPE]
    src_frames = media.iter_frames(src)
    for i, (s, d) in enumerate(zip(src_frames, media.iter_frames(out), strict=True)):
        if i % 25 == 0:
            assert _label_region_changed(d.image, s.image) > 20
    assert job.result["frames_swapped"] >= 120  # a face in ~154 frames (HOG, upsample 0)


# ---- bad input ---------------------------------------------------------------------------------------

def test_no_model_names_the_train_command(extracted_project_copy):
    clip = extracted_project_copy.sources_of("a")[0].path
    job, _ = _run(extracted_project_copy, input=clip)
    assert job.state == "failed"
    assert "facepair train" in job.reason
    assert not list(extracted_project_copy.output_dir.iterdir())


def test_no_faces_gives_the_input_reencoded_with_a_warning(conv_project, tmp_path):
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 8)
    frames = [np.roll(base, i, axis=1) for i in range(12)]
    src = tmp_path / "noface.mp4"
    write_video(src, frames, 12.0)
    out = tmp_path / "noface_out.mp4"
    job, events = _run(conv_project, input=str(src), output=str(out), label=False, crf=10)
    assert job.state == "succeeded", job.reason
    assert job.result["faces_found"] == 0 and job.result["frames"] == 12
    assert any("no faces found in 12 frames" in m for m in _messages(events, "warning"))
    control = tmp_path / "control.mp4"  # the input re-encoded with the same settings, nothing else
    with video_out.VideoWriter(control, 12.0, (160, 120), crf=10) as w:
        for f in _decode(src):
            w.write(f)
    for c, d in zip(_decode(control), _decode(out), strict=True):
        assert np.array_equal(c, d)


def test_truncated_video_converts_what_decodes_and_says_where_it_broke(conv_project, clip_a, tmp_path):
    data = clip_a.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "the fixture clip must be faststart"
    src = tmp_path / "truncated.mp4"
    src.write_bytes(data[: int(len(data) * 0.6)])
    decodable = sum(1 for _ in media.iter_frames(src))
    total = probe(src).frames
    assert 0 < decodable < total
    out = tmp_path / "truncated_out.mp4"
    job, events = _run(conv_project, input=str(src), output=str(out), faces="all")
    assert job.state == "succeeded", job.reason
    assert job.result["frames"] == decodable and job.result["input_broken_at"] == decodable
    warn = " ".join(_messages(events, "warning"))
    assert f"broke at frame {decodable}" in warn
    d = describe(out)
    assert d["frames"] == decodable
    assert d["duration"] <= decodable / 24.0 + 0.1  # the audio was cut where the video ends


def test_unwritable_output_fails_before_any_work(conv_project, clip_a, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    before = {j.id for j in jobs.project_jobs(conv_project)}
    env = dict(os.environ, FACEPAIR_HOME=str(conv_project.home))
    res = subprocess.run([sys.executable, "-m", "tui.cli.main", "convert", conv_project.name, "--input", str(clip_a),
                          "--output", str(blocker / "out.mp4")], capture_output=True, text=True, cwd=ROOT, env=env)
    assert res.returncode == 2 and "not a folder" in " ".join(res.stderr.split())
    assert {j.id for j in jobs.project_jobs(conv_project)} == before  # no job started
    job, events = _run(conv_project, input=str(clip_a), output=str(blocker / "out.mp4"))
    assert job.state == "failed" and "not a folder" in job.reason
    assert not [e for e in events if e["type"] == "progress"]


def test_full_disk_fails_with_that_reason_and_leaves_no_partial_file(conv_project, clip_a, tmp_path, monkeypatch):
    """ENOSPC injected at the writer's file: its partial output is the kernel's /dev/full, where
    every write fails with 'No space left on device' (a real tmpfs is used in test_video_out)."""
    outdir = tmp_path / "full"
    outdir.mkdir()
    out = outdir / "out.mp4"
    os.symlink("/dev/full", video_out.partial_path(out))
    real_check = video_out.check_writable
    monkeypatch.setattr(video_out, "check_writable",
                        lambda p: None if Path(p).parent == outdir else real_check(p))
    monkeypatch.setattr(video_out, "clean_stale_partials", lambda p: [])
    job, _ = _run(conv_project, input=str(clip_a), output=str(out), faces="all")
    assert job.state == "failed"
    assert job.reason.startswith("disk full")
    assert list(outdir.iterdir()) == []


def test_bad_options_are_refused_by_the_cli(conv_project, clip_a):
    env = dict(os.environ, FACEPAIR_HOME=str(conv_project.home))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "tui.cli.main", *args], capture_output=True, text=True, cwd=ROOT,
                              env=env)

    for args, words in (
        (["--start", "5", "--end", "2"], "must be after"),
        (["--crf", "70"], "0–51"),
        (["--output", str(clip_a)], "is the input"),
        (["--erode", "-3"], "erode must be"),
    ):
        res = cli("convert", conv_project.name, "--input", str(clip_a), *args)
        assert res.returncode == 2 and words in " ".join(res.stderr.split()), res.stderr
    res = cli("convert", conv_project.name, "--input", "/nonexistent/x.mp4")
    assert res.returncode == 2 and "no such file" in res.stderr


def test_cancel_stops_and_leaves_no_output(conv_project, clip_a, tmp_path):
    """A cancel request (what SIGTERM and `facepair job cancel` set) stops the pipeline at once;
    the partial file is removed and an existing output stays as it was."""
    from core.errors import JobCancelled

    out = tmp_path / "cancelled.mp4"
    out.write_bytes(b"an older, complete output")

    class Ctx(convert._Quiet):
        def progress(self, done, total=None, **kw):  # the first progress report: the run is under way
            self.cancelled = True

    ctx = Ctx(conv_project)
    with pytest.raises(JobCancelled):
        convert.convert(conv_project, str(clip_a), output=str(out), faces="all", batch=1, ctx=ctx, overwrite=True)
    assert out.read_bytes() == b"an older, complete output"
    assert [p.name for p in tmp_path.iterdir()] == ["cancelled.mp4"]


def test_folder_of_images_converts_into_a_folder(conv_project, tmp_path, astronaut, hopper):
    src = tmp_path / "stills"
    src.mkdir()
    cv2.imwrite(str(src / "1.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(src / "2.jpg"), cv2.cvtColor(hopper, cv2.COLOR_RGB2BGR))
    (src / "3.png").write_bytes(b"not an image")
    out = tmp_path / "converted"
    job, events = _run(conv_project, input=str(src), output=str(out), faces="all")
    assert job.state == "succeeded", job.reason
    assert sorted(p.name for p in out.iterdir()) == ["1.png", "2.jpg"]
    assert job.result["frames"] == 2 and job.result["faces_swapped"] == 2
    assert any("3.png" in m for m in _messages(events, "warning"))  # the corrupt one is named
    assert label.c2pa_source_types(label.read_c2pa(out / "2.jpg")) == [label.SOURCE_TYPE]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["converted", "stills"]  # no partial folder left


@pytest.mark.parametrize("side,swap,mine", [("a", "a-to-b", True), ("b", "b-to-a", True), ("b", "a-to-b", False)])
def test_faces_match_in_a_video_swaps_only_the_replaced_sides_person(conv_project, tmp_path, side, swap, mine):
    """The default `--faces match` on each side's clip: the replaced side's person is swapped in every
    frame; the other person (Hopper when A = the astronaut is replaced) is left alone, with a warning."""
    clip = conv_project.sources_of(side)[0].path
    job, events = _run(conv_project, input=clip, output=str(tmp_path / f"{side}_{swap}.mp4"), swap=swap)
    assert job.state == "succeeded", job.reason
    r = job.result
    assert r["faces"] == "match" and r["faces_found"] > 0
    if mine:
        assert r["faces_swapped"] == r["faces_found"] and r["faces_other"] == 0
    else:
        assert r["faces_swapped"] == 0 and r["faces_other"] == r["faces_found"]
        assert any("none is Astronaut" in m for m in _messages(events, "warning"))


def test_when_c2pa_cannot_sign_the_conversion_succeeds_with_the_other_labels(conv_project, clip_a, tmp_path):
    out = tmp_path / "out.mkv"  # C2PA does not sign Matroska
    job, events = _run(conv_project, input=str(clip_a), output=str(out), faces="all", end="0.5")
    assert job.state == "succeeded", job.reason
    assert job.result["c2pa"] is False and ".mkv" in job.result["c2pa_error"]
    assert any("C2PA manifest not added" in m and "metadata label and the visible label" in m
               for m in _messages(events, "warning"))
    d = describe(out)
    assert d["frames"] == 12 and "AI-generated" in " ".join(d["metadata"].values())
    src = next(iter(media.iter_frames(clip_a))).image
    assert _label_region_changed(next(iter(media.iter_frames(out))).image, src) > 20


def test_the_store_is_used_only_when_it_holds_every_frame(conv_project, clip_a, tmp_path):
    n = probe(clip_a).frames
    assert extracted_store(conv_project, clip_a, 0, None, n) is not None
    assert extracted_store(conv_project, clip_a, 5, 9, n) is not None
    # a store that stops short of the video's end (an extraction that was killed) is not used
    assert extracted_store(conv_project, clip_a, 0, None, n + 8) is None
    other = tmp_path / "not-a-source.mp4"
    shutil.copy(clip_a, other)
    assert extracted_store(conv_project, other, 0, None, n) is None


def test_a_replaced_source_is_detected_on_the_fly_not_pasted_at_old_positions(trained_project, tmp_path):
    """Side A's extracted video replaced at the same path by a mirrored copy: the conversion does not
    use the stored alignments (which describe the old file: a ghost face beside the real one, the real
    one untouched) but finds the faces on the fly, and says so."""
    import subprocess

    from core.media import synth
    from core.project.projects import add_sources

    home = tmp_path / "home"
    shutil.copytree(trained_project.root, home / trained_project.name, symlinks=True)
    p = load_project(home, trained_project.name)
    # The face left of centre (x ≈ 77 of 320): mirrored, it lands well away from where it was.
    frames = synth.head_motion_frames(synth.astronaut(), frames=12, size=(320, 240), center=(330.0, 150.0),
                                      zoom=1.3, seed=7)
    clip = write_video(tmp_path / "talk.mp4", frames, 24.0)
    add_sources(p, "a", [clip])
    job = jobs.run_inline(p, "extract", {"side": "a", "size": 64, "workers": 1})
    assert job.state == "succeeded", job.reason
    src = next(s for s in p.sources_of("a") if s.path == str(clip))
    old = store.load_for_source(p, src.id)
    assert len(old.frames) == 12 and len(old) >= 10

    flipped = tmp_path / "flipped.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(clip), "-vf", "hflip", str(flipped)],
                   check=True)
    os.replace(flipped, clip)
    assert extracted_store(p, clip, 0, None, 12) is None

    out = tmp_path / "out.mp4"
    job, events = _run(p, input=str(clip), output=str(out), faces="all", label=False, crf=0)
    assert job.state == "succeeded", job.reason
    assert job.result["faces_source"] == "detected" and job.result["source_changed"] is True
    assert any("talk.mp4 changed since it was extracted" in m and "detected on the fly" in m
               and f"facepair extract {p.name}" in m for m in _messages(events, "warning"))
    assert job.result["faces_swapped"] >= 10
    # Where the old face was and the new one is not, the output is the input (no ghost face).
    src_frames, dst_frames = _decode(clip), _decode(out)
    width = src_frames[0].shape[1]
    checked = 0
    for i, (s, d) in enumerate(zip(src_frames, dst_frames, strict=True)):
        rows = old.faces_in(i)
        if not len(rows):
            continue
        olds = [old.landmarks[r] for r in rows]
        news = [np.stack([width - 1 - lm[:, 0], lm[:, 1]], axis=1) for lm in olds]
        face_w = max(float(np.ptp(lm[:, 0])) for lm in olds)
        ghost = _dilated_hulls(s.shape, olds, 0) & ~_dilated_hulls(s.shape, news, int(0.15 * face_w) + 6)
        if ghost.sum() < 200:
            continue
        diff = np.abs(s.astype(int) - d.astype(int)).max(axis=2)
        assert diff[ghost].mean() < 2.0, f"frame {i}: a face was pasted where the old file had it"
        checked += 1
    assert checked >= 5
