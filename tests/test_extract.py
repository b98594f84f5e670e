"""The extraction pipeline and job (core.extract.pipeline) on synthetic clips, stills and bad input."""

from __future__ import annotations

import os
import signal
import time

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.extract import finder, source
from core.faces import align, faceset
from core.faces import alignments as al
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.media import read as media
from core.media.probe import ffmpeg_exe, probe
from core.project.projects import add_sources


def _events(project, kind="extract"):
    job = [j for j in jobs.project_jobs(project) if j.kind == kind][0]
    return job, read_events(job.events_path)


def test_extracted_fixture_has_aligned_faces_and_a_store(extracted_project):
    p = extracted_project
    for side in ("a", "b"):
        src = p.sources_of(side)[0]
        a = al.load_for_source(p, src.id)
        assert a.frames.tolist() == list(range(32))  # every frame processed, once
        kept = np.flatnonzero(a.status == 0)
        assert (a.confidence >= finder.TRACK_MIN_SCORE).all()  # every face scored as a face upright
        names = sorted(a.name(r) for r in kept)
        on_disk = sorted(f.name for f in faceset.face_files(p, side))
        assert names == on_disk  # the store and faces/ agree, crop by crop
        # Every crop maps back to its source frame through the stored matrix.
        for r in kept[:3]:
            crop = cv2.imread(str(p.faces_dir(side) / a.name(r)))
            assert crop.shape == (64, 64, 3)
            assert a.size[r] == 64 and a.coverage[r] == pytest.approx(align.COVERAGE)
            back = align.transform_points(align.crop_landmarks(a.landmarks[r], a.matrix[r]), align.invert(a.matrix[r]))
            assert np.abs(back - a.landmarks[r]).max() < 0.5
        # Smoothing keeps raw landmarks next to the smoothed ones; they differ a little, not a lot.
        d = np.linalg.norm(a.landmarks - a.landmarks_raw, axis=2).mean()
        assert 0 < d < 3
    fs = faceset.load_faceset(p, "a")
    assert len(fs) >= 29 and fs.images.shape[1:] == (64, 64, 3)
    job, events = _events(p)
    summary = [e for e in events if e["type"] == "summary"][-1]
    assert summary["sides"]["a"]["faces_kept"] == p.face_count("a")
    assert any(e["type"] == "progress" for e in events)


def test_find_faces_on_any_frame_iterator(synth_clips):
    """The face finder conversion and evaluation use: (frame, faces) in order, with tracks."""
    frames = list(media.iter_frames(synth_clips["astronaut"]))[:20]
    out = list(finder.find_faces(((f.index, f.image) for f in frames), finder.FindOptions(detect_every=5)))
    assert [fr.index for fr, _ in out] == list(range(20))
    assert all(len(faces) == 1 for _, faces in out)
    assert len({faces[0].track for _, faces in out}) == 1  # one person, one track
    tracked = sum(faces[0].tracked for _, faces in out)
    assert tracked >= 10  # between keyframes the face is tracked, not re-detected
    assert all(faces[0].confidence > 0 for _, faces in out)


def test_one_process_hands_each_segment_on_before_reading_the_next(synth_clips):
    """Without worker processes a segment's faces come back as soon as it is found: progress,
    store parts and a cancel follow each segment, not the whole clip."""
    frames = list(media.iter_frames(synth_clips["astronaut"]))[:40]
    read = []

    def feed():
        for f in frames:
            read.append(f.index)
            yield f

    gen = finder.find_faces(feed(), finder.FindOptions(detect_every=5), workers=1, segment=10)
    first, _ = next(gen)
    assert first.index == 0 and len(read) < 20  # one segment and its context frames, not the clip
    gen.close()


@pytest.mark.slow
def test_worker_processes_give_the_same_faces_as_one_process(tmp_path):
    """Segments run in a process pool and come back in order, with tracks linked across segment
    borders: the result is exactly what one process finds."""
    from core.media import synth

    clip = synth.portrait_clip("hopper", tmp_path / "h.mp4", frames=80, seed=7)
    opts = finder.FindOptions(descriptors=True, crop_size=64)
    one = list(finder.find_faces(media.iter_frames(clip), opts, workers=1, segment=20))
    two = list(finder.find_faces(media.iter_frames(clip), opts, workers=2, segment=20))
    assert [fr.index for fr, _ in two] == list(range(80))
    for (_, fa), (_, fb) in zip(one, two, strict=True):
        assert len(fa) == len(fb) == 1
        np.testing.assert_array_equal(fa[0].landmarks, fb[0].landmarks)
        np.testing.assert_array_equal(fa[0].landmarks_raw, fb[0].landmarks_raw)
        assert fa[0].crop_png == fb[0].crop_png
    assert len({faces[0].track for _, faces in two}) == 1  # one track over four segments
    assert sum(faces[0].descriptor is not None for _, faces in two) == 4  # one per track and segment


# ---- smoothing (pure) ----------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 40), vx=st.floats(-30, 30), vy=st.floats(-30, 30), seed=st.integers(0, 2**31))
def test_smoothing_never_lags_constant_speed_motion(n, vx, vy, seed):
    base = np.random.default_rng(seed).uniform(0, 500, (68, 2))
    run = np.stack([base + np.array([vx, vy]) * t for t in range(n)])
    np.testing.assert_allclose(finder.smooth_sequence(run), run, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), noise=st.floats(0.5, 5))
def test_smoothing_reduces_jitter(seed, noise):
    rng = np.random.default_rng(seed)
    truth = np.stack([rng.uniform(0, 500, (68, 2))] * 30)
    noisy = truth + rng.normal(0, noise, truth.shape)
    err_raw = np.abs(noisy - truth)[3:-3].mean()
    err_smooth = np.abs(finder.smooth_sequence(noisy) - truth)[3:-3].mean()
    assert err_smooth < 0.8 * err_raw


# ---- stills, identity, options -----------------------------------------------------------------

def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _run(project, **args):
    job = jobs.run_inline(project, "extract", {"workers": 1, "size": 64, **args})
    return job, read_events(job.events_path)


def _messages(events):
    return " | ".join(e["text"] for e in events if e["type"] == "message")


def test_stills_face_order_and_first_face_identity(project, astronaut, hopper, tmp_path):
    """Two people in one photo: face 0 is the leftmost; without --reference the side's first
    confident face (the astronaut) is the reference, so the other person is dropped."""
    h = cv2.resize(hopper, (int(hopper.shape[1] * 512 / hopper.shape[0]), 512))
    _write(tmp_path / "photos" / "1.png", np.hstack([astronaut, h]))
    _write(tmp_path / "photos" / "2.png", astronaut[:, ::-1])
    add_sources(project, "b", [tmp_path / "photos"])
    job, events = _run(project, side="b")
    assert job.state == "succeeded", job.reason
    a = al.load_for_source(project, project.sources_of("b")[0].id)
    rows = a.faces_in(0)
    assert len(rows) == 2 and a.box[rows[0]][0] < 512 <= a.box[rows[1]][0]
    assert [al.STATUS[int(a.status[r])] for r in rows] == ["kept", "identity"]
    sid = project.sources_of("b")[0].id
    assert sorted(f.name for f in faceset.face_files(project, "b")) == [f"{sid}_000000_00.png", f"{sid}_000001_00.png"]
    assert job.result["sides"]["b"]["dropped"]["identity"] == 1
    assert "first confident face" in _messages(events)
    # Descriptors are stored where computed (one per track: here every face).
    assert a.descriptor(int(rows[0])) is not None


def test_no_identity_keeps_everyone_and_min_face_drops_small(project, astronaut, hopper, tmp_path):
    h = cv2.resize(hopper, (int(hopper.shape[1] * 512 / hopper.shape[0]), 512))
    small = cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA)  # face ≈ 37 px
    _write(tmp_path / "photos" / "1.png", np.hstack([astronaut, h]))
    _write(tmp_path / "photos" / "2.png", small)
    add_sources(project, "a", [tmp_path / "photos"])
    job, _ = _run(project, side="a", identity=False, min_face=30)
    assert job.result["sides"]["a"]["faces_kept"] == 3
    job, _ = _run(project, side="a", identity=False, min_face=60, fresh=True)
    r = job.result["sides"]["a"]
    assert r["faces_kept"] == 2 and r["faces_found"] == 2  # the 37 px face is not even searched for


def test_every_nth_frame_and_a_settings_change_re_extracts(extracted_project_copy):
    p = extracted_project_copy
    job, events = _run(p, side="a", every=4)
    assert job.state == "succeeded", job.reason
    a = al.load_for_source(p, p.sources_of("a")[0].id)
    assert a.frames.tolist() == list(range(0, 32, 4))
    assert p.face_count("a") == 8 and "settings changed (every 1→4)" in _messages(events)
    # Side b was not asked for: untouched.
    assert p.face_count("b") == 32
    # Same settings again: nothing to do.
    job, events = _run(p, side="a", every=4)
    assert "already extracted" in _messages(events) and p.face_count("a") == 8


def test_cancelled_extraction_resumes_without_duplicates(project, tmp_path):
    from core.media import synth

    clip = synth.portrait_clip("astronaut", tmp_path / "long.mp4", frames=150, seed=5)
    add_sources(project, "a", [clip])
    sid = project.sources_of("a")[0].id
    spath = al.store_path(project, sid)
    job = jobs.start_job(project, "extract", {"side": "a", "size": 64, "workers": 1, "flush_seconds": 0.1})
    deadline = time.monotonic() + 120
    while jobs.load_job(job.dir).pid is None:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.01)
    # Run the job in short slices, frozen while this test looks: a busy machine could otherwise
    # deschedule the test long enough for the job to finish all 150 frames before the cancel.
    pid = jobs.load_job(job.dir).pid
    os.killpg(pid, signal.SIGSTOP)
    while not list(spath.glob("part-*.npz")):
        assert time.monotonic() < deadline, "no store part written"
        assert jobs.load_job(job.dir).active, jobs.load_job(job.dir).reason
        os.killpg(pid, signal.SIGCONT)
        time.sleep(0.02)
        os.killpg(pid, signal.SIGSTOP)
    assert jobs.load_job(job.dir).active, "the job ended before the cancel could reach it"
    os.killpg(pid, signal.SIGTERM)
    os.killpg(pid, signal.SIGCONT)
    final = jobs.wait(job, timeout=60)
    assert final.state == "cancelled" and final.reason == "cancelled on request"
    partial = al.load(spath)
    assert 0 < len(partial.frames) < 150
    on_disk = {f.name for f in faceset.face_files(project, "a")}
    assert on_disk == {partial.name(r) for r in np.flatnonzero(partial.status == 0)}  # consistent
    job2, events = _run(project, side="a")
    assert job2.state == "succeeded", job2.reason
    assert "resuming" in _messages(events)
    full = al.load(spath)
    assert full.frames.tolist() == list(range(150))
    assert len(set(zip(full.face_frame.tolist(), full.face_index.tolist(), strict=True))) == len(full)
    names = sorted(f.name for f in faceset.face_files(project, "a"))
    assert names == sorted(full.name(r) for r in np.flatnonzero(full.status == 0))
    assert not list(project.faces_dir("a").glob(".*"))  # no temp files left
    # Frames stored before the cancel were not redone.
    r0 = partial.faces_in(int(partial.frames[0]))[0]
    np.testing.assert_array_equal(full.landmarks[full.faces_in(int(partial.frames[0]))[0]], partial.landmarks[r0])


# ---- bad input -----------------------------------------------------------------------------------

def test_missing_source_file(project, tmp_path, astronaut):
    img = _write(tmp_path / "gone.png", astronaut)
    add_sources(project, "a", [img])
    img.unlink()
    job, _ = _run(project, side="a")
    assert job.state == "failed" and "nothing could be extracted" in job.reason and "gone.png: no such" in job.reason


def test_video_that_cannot_be_opened_writes_nothing_for_it(project, tmp_path, synth_clips):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    add_sources(project, "a", [bad])
    job, _ = _run(project, side="a")
    assert job.state == "failed" and "broken.mp4: cannot open it as a video" in job.reason
    sid = project.sources_of("a")[0].id
    assert not al.store_path(project, sid).exists() and project.face_count("a") == 0
    # Next to a good source: the good one is extracted, the bad one named in the summary.
    add_sources(project, "a", [synth_clips["hopper"]])
    job, events = _run(project, side="a", identity=False)
    assert job.state == "succeeded"
    assert str(bad) in job.result["sides"]["a"]["errors"] and project.face_count("a") == 32
    assert "cannot open it as a video" in _messages(events)


def test_corrupt_image_is_skipped_counted_and_named(project, tmp_path, astronaut):
    _write(tmp_path / "set" / "a.png", astronaut)
    (tmp_path / "set" / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    _write(tmp_path / "set" / "c.png", astronaut[:, ::-1])
    add_sources(project, "b", [tmp_path / "set"])
    job, events = _run(project, side="b")
    r = job.result["sides"]["b"]
    assert job.state == "succeeded" and r["corrupt"] == ["set/b.jpg"] and r["faces_kept"] == 2
    assert "b.jpg" in _messages(events)


def test_source_without_faces_reports_the_side_empty(project, tmp_path):
    from skimage import data

    from core.media import synth

    clip = synth.synthesize_clip(data.coffee(), tmp_path / "coffee.mp4", frames=12)
    add_sources(project, "a", [clip])
    job, events = _run(project, side="a")
    assert job.state == "succeeded"
    r = job.result["sides"]["a"]
    assert r["empty"] is True and r["faces_found"] == 0 and r["empty_sources"] == [str(clip)]
    assert "coffee.mp4: no faces found" in _messages(events)


def test_image_larger_than_8k_is_extracted(project, tmp_path, astronaut):
    canvas = np.full((900, 8400, 3), 120, np.uint8)
    canvas[100:868, 5000:5768] = cv2.resize(astronaut, (768, 768))  # face ≈ 140 px
    _write(tmp_path / "huge.png", canvas)
    add_sources(project, "a", [tmp_path / "huge.png"])
    job, _ = _run(project, side="a")
    assert job.state == "succeeded" and job.result["sides"]["a"]["faces_kept"] == 1
    a = al.load_for_source(project, project.sources_of("a")[0].id)
    assert 5000 < a.box[0][0] < 5768  # full-resolution coordinates


def test_bad_options_are_refused_before_anything_runs(project, tmp_path, capsys, astronaut):
    from tui.cli.main import main

    def err() -> str:  # the console may wrap long lines
        return " ".join(capsys.readouterr().err.split())

    assert main(["extract", "pair"]) == 2
    assert "has no sources" in err()
    add_sources(project, "a", [_write(tmp_path / "x.png", astronaut)])
    assert main(["extract", "pair", "--reference", str(tmp_path / "x.png")]) == 2
    assert "--side a or --side b" in err()
    assert main(["extract", "pair", "--side", "a", "--reference", str(tmp_path / "nope.png")]) == 2
    assert "nope.png: no such file" in err()
    with pytest.raises(SystemExit):
        main(["extract", "pair", "--size", "2000"])
    assert "64..1024" in err()
    assert not jobs.project_jobs(project)  # no job was started


def test_cli_runs_the_job_in_the_foreground(project, synth_clips, capsys):
    from tui.cli.main import main

    add_sources(project, "b", [synth_clips["hopper"]])
    assert main(["extract", "pair", "--side", "b", "--size", "64"]) == 0
    assert project.face_count("b") == 32
    assert "extract succeeded" in capsys.readouterr().out


@pytest.mark.slow
def test_cnn_detector_runs_the_pipeline(project, synth_clips):
    add_sources(project, "a", [synth_clips["astronaut"]])
    job, _ = _run(project, side="a", detector="cnn", detect_every=16)
    assert job.state == "succeeded", job.reason
    assert job.result["sides"]["a"]["faces_kept"] >= 30
    a = al.load_for_source(project, project.sources_of("a")[0].id)
    assert a.meta["settings"]["detector"] == "cnn"


@pytest.mark.slow
def test_benchmark_reports_what_the_issue_names(synth_clips):
    from core.bench import extract as bench_extract

    r = bench_extract.run(synth_clips["astronaut"])["extract"]
    for key in ("frames_per_s", "naive_frames_per_s", "ratio", "faces", "naive_faces", "landmark_px"):
        assert r[key] is not None, key
    assert r["frames"] == 32 and r["naive_faces"] == 32 and r["recall"] == 1.0
    assert r["landmark_px"] < 2.0
    assert r["ratio"] == pytest.approx(r["frames_per_s"] / r["naive_frames_per_s"], rel=0.02)
    assert "ratio" in bench_extract.format_table({"extract": r})


def test_two_extractions_of_one_side_never_run_at_once(extracted_project_copy):
    from core.jobs import locks

    p = extracted_project_copy
    locks.acquire(p, "extract-a", "extract-other", os.getpid())  # a live job holds side a
    try:
        job, _ = _run(p, side="a", fresh=True)
        assert job.state == "failed" and "extract-a lock held by job extract-other" in job.reason
        assert p.face_count("a") == 32  # nothing was touched
        job, _ = _run(p, side="b")  # the other side is free
        assert job.state == "succeeded", job.reason
    finally:
        locks.release(p, "extract-a", "extract-other")
    assert not locks.holder(p, "extract-b")  # released after the job


def test_extracted_crops_are_invariant_to_rotation_scale_and_shift(project, astronaut, tmp_path):
    """The pipeline's own crops (PNG files) of the astronaut moved around match the upright one's."""
    canvas = 900
    folder = tmp_path / "moved"
    _write(folder / "0.png", astronaut)
    poses = [(-15, 0.7, (40, -25)), (15, 1.4, (-30, 20)), (-15, 1.4, (10, 30)), (15, 0.7, (-50, 0))]
    for i, (angle, scale, shift) in enumerate(poses, start=1):
        m = cv2.getRotationMatrix2D((256, 256), angle, scale)
        m[:, 2] += (canvas / 2 - 256 + shift[0], canvas / 2 - 256 + shift[1])
        _write(folder / f"{i}.png", cv2.warpAffine(astronaut, m, (canvas, canvas), flags=cv2.INTER_CUBIC,
                                                   borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128)))
    add_sources(project, "a", [folder])
    job, _ = _run(project, side="a", size=128)
    assert job.state == "succeeded", job.reason
    fs = faceset.load_faceset(project, "a")
    assert len(fs) == 5, fs.names  # one face per image: the badge is not taken for a face
    region = fs.masks[0] > 127
    for i in range(1, 5):
        diff = np.abs(fs.images[i].astype(float) - fs.images[0].astype(float)).mean(axis=2)[region].mean()
        assert diff < 8, f"pose {poses[i - 1]}: crops differ by {diff:.1f}/255"


# ---- a source file that changes or is cut short (docs/reliability.md) ----------------------------

def _mirror(src, dst):
    """`src` flipped left to right (ffmpeg -vf hflip), written to dst: another video, same length."""
    import subprocess

    tmp = dst.with_name(f"mirrored-{dst.name}")
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src), "-vf", "hflip", str(tmp)],
                   check=True)
    os.replace(tmp, dst)


def _show(capsys, name, *flags):
    from tui.cli.main import main

    code = main(["show", name, *flags])
    out, _ = capsys.readouterr()
    assert code == 0
    return out


def test_a_replaced_source_is_re_extracted_and_shown_changed(project, tmp_path, capsys):
    """Extract, replace the file at the same path with a mirrored copy: `show` (and --json) mark it
    changed, `extract` re-extracts it (not "already extracted"), the new alignments follow the new
    face; a third run reports the stored totals, not "0 faces kept of 0 found"."""
    import json

    from core.media import synth
    from core.project.projects import load_project

    clip = synth.portrait_clip("astronaut", tmp_path / "clip.mp4", frames=16, seed=3)
    width = probe(clip).width
    add_sources(project, "a", [clip])
    src = project.sources_of("a")[0]
    job, _ = _run(project, side="a", identity=False)
    assert job.state == "succeeded", job.reason
    before = al.load_for_source(project, src.id)
    assert len(before.frames) == 16 and len(before) >= 14
    assert json.loads(_show(capsys, "pair", "--json"))["sources"]["a"][0]["state"] == "extracted"

    _mirror(clip, clip)
    shown = json.loads(_show(capsys, "pair", "--json"))["sources"]["a"][0]
    assert shown["state"] == "changed" and "changed since it was extracted" in shown["detail"]
    assert "facepair extract pair" in shown["detail"]
    text = _show(capsys, "pair")
    assert "changed" in text and "changed since it was extracted" in " ".join(text.split())

    job, events = _run(project, side="a", identity=False)
    assert job.state == "succeeded", job.reason
    msgs = _messages(events)
    assert "already extracted" not in msgs and "clip.mp4: the file changed since it was extracted" in msgs
    assert job.result["sides"]["a"]["changed"] == [str(clip)]
    after = al.load_for_source(project, src.id)
    assert len(after.frames) == 16
    # The stored faces are the mirrored ones: x → width - 1 - x (the old ones would be off by far more).
    f0_old, f0_new = before.landmarks[before.faces_in(0)[0]], after.landmarks[after.faces_in(0)[0]]
    assert abs(f0_new[:, 0].mean() - (width - 1 - f0_old[:, 0].mean())) < 3
    assert abs(f0_new[:, 0].mean() - f0_old[:, 0].mean()) > 10
    assert sorted(f.name for f in faceset.face_files(project, "a")) == \
        sorted(after.name(r) for r in np.flatnonzero(after.status == 0))
    assert json.loads(_show(capsys, "pair", "--json"))["sources"]["a"][0]["state"] == "extracted"
    assert load_project(project.home, "pair").sources_of("a")[0].size == clip.stat().st_size  # record refreshed

    # Nothing left to do: the summary gives what the store holds.
    job, events = _run(project, side="a", identity=False)
    r = job.result["sides"]["a"]
    assert "already extracted" in _messages(events) and r["already_extracted"] == [str(clip)]
    assert r["frames"] == 16 and r["faces_found"] == len(after) and r["faces_kept"] == project.face_count("a") > 0
    assert f"side a: {r['faces_kept']} faces kept of {len(after)} found in 16 frames" in _messages(events)


def test_an_old_store_without_fingerprint_still_counts_as_extracted(project, tmp_path, astronaut):
    """A project and store written before fingerprints (no hash in project.toml nor in the store's
    meta): size and mtime decide; an unchanged file is not re-extracted, and its fingerprint is
    recorded from then on; a new size is a change."""
    import dataclasses

    from core.faces.sources import source_state
    from core.project.projects import load_project
    from core.system.atomic import atomic_write_json, read_json

    img = _write(tmp_path / "face.png", astronaut)
    add_sources(project, "a", [img])
    job, _ = _run(project, side="a", identity=False)
    assert job.state == "succeeded" and job.result["sides"]["a"]["faces_kept"] == 1
    project.sources = [dataclasses.replace(s, fingerprint=None, frames=None) for s in project.sources]
    project.save()
    project = load_project(project.home, project.name)
    src = project.sources_of("a")[0]
    assert src.fingerprint is None
    meta_path = al.store_path(project, src.id) / al.META
    meta = read_json(meta_path)
    del meta["source"]["fingerprint"]
    atomic_write_json(meta_path, meta)
    assert source_state(project, src)["state"] == "extracted"
    job, events = _run(project, side="a", identity=False)
    assert "changed" not in _messages(events) and job.result["sides"]["a"]["faces_kept"] == 1
    assert "fingerprint" in read_json(meta_path)["source"]
    os.utime(img, (1e9, 1e9))  # same content, new mtime: the fingerprint now says unchanged
    assert source_state(project, src)["state"] == "extracted"
    _write(img, astronaut[:, ::-1])
    assert source_state(project, src)["state"] == "changed"


def test_a_truncated_video_is_marked_partial_and_tried_again(project, tmp_path, capsys):
    """A video cut short (its index, at the front, still counts every frame): the extraction says
    how many frames it could decode of how many, marks the source partial (the summary, `show`),
    and the next run tries again instead of calling it complete."""
    import json

    from core.media import fingerprint, synth

    full = synth.portrait_clip("astronaut", tmp_path / "full.mp4", frames=32, seed=4)
    data = full.read_bytes()
    clip = tmp_path / "cut.mp4"
    clip.write_bytes(data[: int(len(data) * 0.7)])
    assert probe(clip).frames == 32
    decodable = sum(1 for _ in media.iter_frames(clip))
    assert 0 < decodable < 32
    add_sources(project, "a", [clip])
    src = project.sources_of("a")[0]
    job, events = _run(project, side="a", identity=False)
    assert job.state == "succeeded", job.reason
    r = job.result["sides"]["a"]
    assert r["partial"] == [{"path": str(clip), "decoded": decodable, "expected": 32}]
    warnings = [e["text"] for e in events if e["type"] == "message" and e["level"] == "warning"]
    assert any(f"only {decodable} of 32 frames could be decoded" in w for w in warnings)
    assert any(f"partial: cut.mp4 ({decodable} of 32 frames)" in w for w in warnings)
    spath = al.store_path(project, src.id)
    assert not (spath / source.COMPLETE).exists() and (spath / fingerprint.PARTIAL).is_file()
    shown = json.loads(_show(capsys, "pair", "--json"))["sources"]["a"][0]
    assert shown["state"] == "partial" and f"only {decodable} of 32 frames" in shown["detail"]
    assert "partial" in _show(capsys, "pair")

    job, events = _run(project, side="a", identity=False)  # tried again, not "already extracted"
    assert "already extracted" not in _messages(events) and "resuming" in _messages(events)
    assert job.result["sides"]["a"]["partial"][0]["decoded"] == decodable

    clip.write_bytes(data)  # the whole file is back: it changed, so it is extracted again, to the end
    job, events = _run(project, side="a", identity=False)
    r = job.result["sides"]["a"]
    assert r["partial"] == [] and r["frames"] == 32 and r["changed"] == [str(clip)]
    assert (spath / source.COMPLETE).is_file() and not (spath / fingerprint.PARTIAL).exists()
    assert json.loads(_show(capsys, "pair", "--json"))["sources"]["a"][0]["state"] == "extracted"
