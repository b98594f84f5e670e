"""Extraction on real media (../shared/data): a filmed video and photos of three people.

Skipped when ../shared/data is absent. The video is extracted once for the module, by a job that
is killed (SIGKILL, no chance to save) midway and then run again.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from core.faces import alignments as al
from core.faces import faceset
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.project.projects import add_sources, create_project

pytestmark = pytest.mark.shared_data

VIDEO_FRAMES = 275


@pytest.fixture(scope="module")
def killed_then_resumed(shared_data, tmp_path_factory):
    """The video extracted by a job killed midway, then by a second run; both jobs' records."""
    home = tmp_path_factory.mktemp("hamilton")
    project = create_project(home, "ham", "Singer", "Other", "test run on the project's shared test media")
    add_sources(project, "a", [shared_data / "video" / "short_hamilton_clip.mp4"])
    sid = project.sources_of("a")[0].id
    spath = al.store_path(project, sid)
    # Two worker processes (the pool is used from 100 frames on here): the kill reaches them too.
    job = jobs.start_job(project, "extract", {"side": "a", "size": 96, "flush_seconds": 0.2, "workers": 2,
                                              "pool_min_frames": 100})
    deadline = time.monotonic() + 300
    while len(list(spath.glob("part-*.npz"))) < 2:
        current = jobs.load_job(job.dir)
        assert current.active, f"the job ended before it could be killed: {current.state} {current.reason}"
        assert time.monotonic() < deadline, "no store part written in time"
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)  # the job, its worker pool and fork server: no clean-up at all
    jobs.wait(job, timeout=30)
    partial = al.load(spath)
    crops_after_kill = {p.name for p in project.faces_dir("a").glob("*.png")}
    second = jobs.run_inline(project, "extract", {"side": "a", "size": 96})
    return {"project": project, "sid": sid, "partial": partial, "crops_after_kill": crops_after_kill,
            "second": second, "store": al.load(spath)}


def test_faces_are_found_in_enough_frames(killed_then_resumed):
    a = killed_then_resumed["store"]
    with_faces = len(np.unique(a.face_frame))
    assert with_faces >= 160, f"faces in {with_faces} of {VIDEO_FRAMES} frames"
    print(f"faces in {with_faces}/{VIDEO_FRAMES} frames, {len(a)} faces, {a.counts()}")


def test_killed_run_resumes_without_duplicates(killed_then_resumed):
    r = killed_then_resumed
    partial, final, project = r["partial"], r["store"], r["project"]
    assert r["second"].state == "succeeded", r["second"].reason
    assert 0 < len(partial.frames) < VIDEO_FRAMES  # the kill left a partial but loadable store
    events = read_events(r["second"].events_path)
    assert any("resuming" in e.get("text", "") for e in events if e["type"] == "message")
    # Every frame exactly once; each face once; crops on disk = kept faces, no leftovers.
    assert final.frames.tolist() == list(range(VIDEO_FRAMES))
    keys = list(zip(final.face_frame.tolist(), final.face_index.tolist(), strict=True))
    assert len(set(keys)) == len(keys)
    on_disk = sorted(p.name for p in project.faces_dir("a").glob("*.png"))
    assert on_disk == sorted(final.name(i) for i in np.flatnonzero(final.status == 0))
    # What the killed run stored was kept as it was, not redone.
    for f in partial.frames[:: max(1, len(partial.frames) // 10)]:
        rows_before, rows_after = partial.faces_in(int(f)), final.faces_in(int(f))
        assert len(rows_before) == len(rows_after)
        for rb, ra in zip(rows_before, rows_after, strict=True):
            np.testing.assert_array_equal(partial.landmarks[rb], final.landmarks[ra])


def test_store_reloads_identical(killed_then_resumed):
    r = killed_then_resumed
    a = r["store"]
    b = al.load_for_source(r["project"], r["sid"])
    np.testing.assert_array_equal(a.frames, b.frames)
    for k in a.faces:
        np.testing.assert_array_equal(a.faces[k], b.faces[k], err_msg=k)
    np.testing.assert_array_equal(a.descriptor_face, b.descriptor_face)
    np.testing.assert_array_equal(a.descriptors, b.descriptors)
    assert len(list(a.path.glob("part-*.npz"))) == 1  # compacted after the run
    fs = faceset.load_faceset(r["project"], "a")
    assert len(fs) == int((a.status == 0).sum()) and fs.images.shape[1:] == (96, 96, 3)


def test_identity_filter_keeps_the_reference_person(shared_data, tmp_path):
    """With one photo of one person as reference, that person's photos are kept and the other two
    people's dropped."""
    faces = shared_data / "faces"
    project = create_project(tmp_path / "home", "ids", "X", "Alex", "test run on the project's shared test media")
    people = ("alex-lacamoire", "lin-manuel-miranda", "rose-leslie")
    add_sources(project, "b", [faces / p for p in people])
    job = jobs.run_inline(project, "extract", {"side": "b", "size": 64, "workers": 1,
                                               "reference": [str(faces / "alex-lacamoire" / "1.png")]})
    assert job.state == "succeeded", job.reason
    kept_sources = {al.parse_crop_name(p.name)[0] for p in project.faces_dir("b").glob("*.png")}
    by_person = {p: s.id for p, s in zip(people, project.sources_of("b"), strict=True)}
    assert kept_sources == {by_person["alex-lacamoire"]}
    assert project.face_count("b") == 3
    r = job.result["sides"]["b"]
    assert r["faces_found"] == 6 and r["dropped"]["identity"] == 3
