"""Learning-rate dropout (`--lr-dropout P`): each weight's update is dropped with probability P."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from core.jaxmodels.step import synthetic_faces
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.jobs.spec import OptionError
from tests.fixtures.train import TRAIN_ARGS, TRAINED_STEPS, micro_trainer
from tests.test_train import checkpoint_params, copy_project


def _one_step(p: float):
    t = micro_trainer(lr_dropout=p) if p else micro_trainer()
    state = t.init_state(0)
    before = jax.tree.map(np.array, state.params)
    state, _ = t.train_steps(state, t.put_data(synthetic_faces(t.preset, 8)), 1)
    return before, jax.tree.map(np.asarray, state.params), state


def test_a_dropped_update_leaves_the_weight_and_a_kept_one_moves_as_without_dropout():
    before, full, _ = _one_step(0.0)
    _, dropped, state = _one_step(0.7)
    moved = extra = total = 0
    for b, f, d in zip(jax.tree.leaves(before), jax.tree.leaves(full), jax.tree.leaves(dropped), strict=True):
        changes = f != b
        took = d != b
        total += int(changes.sum())
        moved += int(took.sum())
        extra += int((took & ~changes).sum())  # nothing moves that the full step would not move
        # A kept update is the undropped step's (one multiply-add per weight apart).
        np.testing.assert_allclose(d[took], f[took], rtol=0, atol=1e-6 * max(1.0, float(np.abs(b).max())))
    assert extra == 0
    share = moved / total
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / total), (share, total)  # binomial, 4 σ
    assert int(state.step) == 1


@pytest.mark.slow
def test_a_resume_with_lr_dropout_records_it_and_drops_updates(trained_project, tmp_path):
    p = copy_project(trained_project, tmp_path)
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "lr_dropout": 0.5, "steps": TRAINED_STEPS + 1})
    assert job.state == "succeeded", job.reason
    said = [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]
    assert any("each step updates about 50% of the weights" in t for t in said), said
    before, after = checkpoint_params(p, TRAINED_STEPS), checkpoint_params(p, TRAINED_STEPS + 1)
    still = sum(int((before[k] == after[k]).sum()) for k in before) / sum(before[k].size for k in before)
    assert 0.4 < still < 0.6, still


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_an_lr_dropout_out_of_range_is_refused_before_the_job_starts(value):
    from core.jobs import kinds as jobkinds

    with pytest.raises(OptionError, match=r"--lr-dropout"):
        jobkinds.check_args("train", {**TRAIN_ARGS, "lr_dropout": value})
