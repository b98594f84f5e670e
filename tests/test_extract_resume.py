"""An extraction job SIGKILLed late in a video (no chance to save or clean up), then resumed: what the
killed run stored is kept as it was (its crops not rewritten, its frames not processed again), and
the store ends with every frame once, each kept face's crop on disk and nothing else."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from core.faces import alignments as al
from core.jobs import control as jobs
from core.media import synth
from core.project.projects import add_sources, create_project

FRAMES = 120
KILL_AT = 0.75  # of the frames stored


def _stored(spath) -> int:
    try:
        return len(al.load(spath).frames)
    except al.AlignmentsError:  # no meta yet
        return 0


@pytest.mark.slow
def test_a_job_killed_late_resumes_where_it_stopped(tmp_path):
    clip = synth.portrait_clip("astronaut", tmp_path / "clip.mp4", frames=FRAMES, seed=7)
    project = create_project(tmp_path / "home", "kill", "A", "B", "test run on a synthetic clip")
    add_sources(project, "a", [clip])
    sid = project.sources_of("a")[0].id
    spath = al.store_path(project, sid)
    # A part a frame, two worker processes (the kill reaches them too: the job's process group).
    args = {"side": "a", "size": 64, "flush_seconds": 0, "workers": 2, "pool_min_frames": 1}
    job = jobs.start_job(project, "extract", args)
    deadline = time.monotonic() + 300
    while _stored(spath) < KILL_AT * FRAMES:
        current = jobs.load_job(job.dir)
        assert current.active, f"the job ended before it could be killed: {current.state} {current.reason}"
        assert time.monotonic() < deadline, "the job stored too few frames in time"
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGKILL)
    assert jobs.wait(job, timeout=30).state == "failed"
    partial = al.load(spath)
    done = len(partial.frames)
    assert KILL_AT * FRAMES <= done < FRAMES, done  # killed partway, late
    print(f"killed with {done} of {FRAMES} frames stored")
    kept_before = {partial.name(r): os.stat(project.faces_dir("a") / partial.name(r))
                   for r in np.flatnonzero(partial.status == 0)}
    assert kept_before

    resumed = jobs.run_inline(project, "extract", {k: v for k, v in args.items() if k != "flush_seconds"})
    assert resumed.state == "succeeded", resumed.reason
    side = resumed.result["sides"]["a"]
    assert side["new_frames"] == FRAMES - done  # only the frames the store did not hold
    assert side["frames"] == FRAMES
    final = al.load(spath)
    assert final.frames.tolist() == list(range(FRAMES)) and (spath / "complete.json").is_file()
    keys = list(zip(final.face_frame.tolist(), final.face_index.tolist(), strict=True))
    assert len(set(keys)) == len(keys)
    crops = sorted(p.name for p in project.faces_dir("a").glob("*.png"))
    assert crops == sorted(final.name(r) for r in np.flatnonzero(final.status == 0))
    for name, st in kept_before.items():  # the killed run's crops, untouched
        now = os.stat(project.faces_dir("a") / name)
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), name
    for f in partial.frames[:: 7]:
        for rb, ra in zip(partial.faces_in(int(f)), final.faces_in(int(f)), strict=True):
            np.testing.assert_array_equal(partial.landmarks[rb], final.landmarks[ra])
