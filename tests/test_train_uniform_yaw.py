"""Batches balanced over head yaw (`--uniform-yaw`): every yaw bin is drawn alike, every face
still drawn, and the run records the setting like its other options."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from core.jaxmodels.step import synthetic_faces
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.train import model_io, yaw_balance
from core.train.job import load_side
from tests.fixtures.train import TRAIN_ARGS, TRAINED_STEPS, micro_trainer
from tests.test_train import copy_project


def test_each_yaw_bin_gets_an_equal_share_of_the_table_and_every_face_is_in_it():
    yaws = np.r_[np.linspace(0.1, 2.9, 90), np.full(10, 20.0), np.full(3, np.nan)]
    picks = yaw_balance.balanced_picks(yaws, 3.0)
    assert set(picks.tolist()) == set(range(103))
    frontal, turned, unknown = (np.isin(picks, r).sum() for r in (range(90), range(90, 100), range(100, 103)))
    assert frontal == turned == unknown == 90  # a third of the draws each, where the clip had 87 %, 10 %, 3 %
    counts = np.bincount(picks, minlength=103)
    assert (counts[:90] == 1).all() and (counts[90:100] == 9).all() and (counts[100:] == 30).all()


def test_a_table_needs_faces_and_bins_of_some_width():
    with pytest.raises(ValueError, match="no faces"):
        yaw_balance.balanced_picks(np.array([]))
    with pytest.raises(ValueError, match="width"):
        yaw_balance.balanced_picks(np.array([1.0]), 0.0)


def test_the_yaw_of_a_face_does_not_depend_on_its_size_or_place(trained_project):
    """The crop's landmarks, at any resolution: the yaw of the face as the model sees it."""
    lms = load_side(trained_project, "a", 64, None).landmarks[:6].astype(np.float64)
    moved = lms * 3.1 + np.array([40.0, -25.0])
    before, after = yaw_balance.face_yaws(lms), yaw_balance.face_yaws(moved)
    assert np.isfinite(before).all()
    np.testing.assert_allclose(after, before, atol=1.0)


def test_the_step_draws_only_the_faces_of_its_table():
    t = micro_trainer()
    host = synthetic_faces(t.preset, 8)
    faces_a = np.full_like(np.asarray(host.faces_a), 255)
    faces_a[5] = 0
    state = t.init_state(0)
    plain = t.sample_batch(state, t.put_data(host._replace(faces_a=faces_a)))
    picked = t.sample_batch(state, t.put_data(host._replace(faces_a=faces_a, picks_a=np.array([5], np.int32))))
    assert float(np.asarray(plain.tgt_a).mean()) > 0.5  # mostly the white faces
    assert float(np.asarray(picked.tgt_a).max()) < 0.25  # face 5 only (colour-jittered), every time
    np.testing.assert_array_equal(np.asarray(picked.tgt_b), np.asarray(plain.tgt_b))  # B: no table, as before
    jax.block_until_ready(picked)


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["on-device", "streamed"])
def test_a_resume_with_uniform_yaw_says_so_and_the_checkpoint_keeps_it(trained_project, tmp_path, stream):
    p = copy_project(trained_project, tmp_path)
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "uniform_yaw": True, "stream": stream,
                                       "steps": TRAINED_STEPS + 1})
    assert job.state == "succeeded", job.reason
    said = [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]
    for side in "ab":
        assert any(t.startswith(f"uniform yaw, side {side}: ") and " bins of 3°" in t for t in said), said
    assert model_io.read_status(p)["step"] == TRAINED_STEPS + 1
    if stream:
        return  # the checkpoint's setting is read alike either way
    again = jobs.run_inline(p, "train", {**TRAIN_ARGS, "stream": stream, "steps": TRAINED_STEPS + 2})
    assert again.state == "succeeded", again.reason
    said = [e["text"] for e in read_events(again.events_path) if e["type"] == "message"]
    assert any(t.startswith("uniform yaw, side a: ") for t in said), said  # the checkpoint's setting
