"""The extraction pipeline and job (core.extract) on synthetic clips, stills and bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core import align, extract, faceset, jobs, media
from core import alignments as al
from core.events import read_events


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
    out = list(extract.find_faces(((f.index, f.image) for f in frames), extract.FindOptions(detect_every=5)))
    assert [fr.index for fr, _ in out] == list(range(20))
    assert all(len(faces) == 1 for _, faces in out)
    assert len({faces[0].track for _, faces in out}) == 1  # one person, one track
    tracked = sum(faces[0].tracked for _, faces in out)
    assert tracked >= 10  # between keyframes the face is tracked, not re-detected
    assert all(faces[0].confidence > 0 for _, faces in out)
