"""A damaged checkpoint: training and conversion fall back to the newest intact step, say which step
was damaged and move it aside (never delete it); with every step damaged, one clear error.

Uses copies of `trained_project` (a `tiny` model with checkpoints at steps 3 and 6).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.jobs import control as jobs
from core.jobs.events import read_events
from core.project.projects import load_project
from core.train import model_io
from tests.fixtures.train import TRAIN_ARGS, TRAINED_STEPS


def copy_project(src, tmp_path, name="home"):
    home = tmp_path / name
    shutil.copytree(src.root, home / src.name, symlinks=True)
    return load_project(home, src.name)


def damage(project, step: int, how: str) -> None:
    """Damage the checkpoint of `step` the two ways seen in the field."""
    d = model_io.checkpoint_dir(project) / str(step) / "state"
    if how == "metadata":
        (d / "_METADATA").unlink()
    elif how == "corrupt":  # bytes flipped in the middle of each data file (same size: bad sectors, bit rot)
        for data in (p for p in d.rglob("*") if p.is_file() and p.parent.name == "d"):
            b = bytearray(data.read_bytes())
            mid = len(b) // 2
            b[mid:mid + 32] = bytes(x ^ 0xFF for x in b[mid:mid + 32])
            data.write_bytes(bytes(b))
    else:  # the data files cut in half (a disk that filled up, a copy cut short). Every one: which
        # file holds the params (all that conversion reads) depends on the order orbax wrote them in.
        for data in (p for p in d.rglob("*") if p.is_file() and p.parent.name == "d"):
            size = data.stat().st_size
            with open(data, "r+b") as f:
                f.truncate(size // 2)


def warnings_of(job) -> list[str]:
    return [e["text"] for e in read_events(job.events_path) if e["type"] == "message" and e["level"] == "warning"]


def messages_of(job) -> list[str]:
    return [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]


def assert_moved_aside(project, step: int, retrained: bool = False) -> None:
    if not retrained:  # training from the older step saves this step again: a new, intact one
        assert not (model_io.checkpoint_dir(project) / str(step)).exists()
    moved = project.model_dir / "checkpoints-damaged" / str(step)
    assert (moved / "state").is_dir(), "the damaged checkpoint is kept, beside the others"


@pytest.mark.parametrize("how", ["metadata", "data", "corrupt"])
def test_training_resumes_from_the_newest_intact_checkpoint(trained_project, tmp_path, how):
    p = copy_project(trained_project, tmp_path)
    damage(p, TRAINED_STEPS, how)
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": TRAINED_STEPS + 1})
    assert job.state == "succeeded", job.reason
    assert any("resumed from the checkpoint at step 3" in m for m in messages_of(job))
    warned = warnings_of(job)
    assert any(f"checkpoint at step {TRAINED_STEPS}" in w and "damaged" in w and "checkpoints-damaged" in w
               for w in warned), warned
    assert_moved_aside(p, TRAINED_STEPS, retrained=True)
    assert model_io.read_status(p)["step"] == TRAINED_STEPS + 1
    assert model_io.checkpoint_steps(model_io.checkpoint_dir(p)) == [TRAINED_STEPS + 1, TRAINED_STEPS, 3]


@pytest.mark.parametrize("how", ["metadata", "data", "corrupt"])
def test_conversion_uses_the_newest_intact_checkpoint(trained_project, tmp_path, how):
    p = copy_project(trained_project, tmp_path)
    damage(p, TRAINED_STEPS, how)
    clip = Path(p.sources_of("a")[0].path)
    job = jobs.run_inline(p, "preview", {"input": str(clip), "frame": 2, "faces": "all"})
    assert job.state == "succeeded", job.reason
    assert [e["step"] for e in read_events(job.events_path) if e["type"] == "preview"] == [3]
    warned = warnings_of(job)
    assert any(f"checkpoint at step {TRAINED_STEPS}" in w and "damaged" in w for w in warned), warned
    assert_moved_aside(p, TRAINED_STEPS)
    # The next run finds the intact step straight away and says nothing more.
    job = jobs.run_inline(p, "preview", {"input": str(clip), "frame": 2, "faces": "all"})
    assert job.state == "succeeded", job.reason
    assert not [w for w in warnings_of(job) if "damaged" in w]


def test_every_checkpoint_damaged_is_one_clear_error(trained_project, tmp_path):
    p = copy_project(trained_project, tmp_path)
    damage(p, TRAINED_STEPS, "data")
    damage(p, 3, "metadata")
    clip = Path(p.sources_of("a")[0].path)
    job = jobs.run_inline(p, "preview", {"input": str(clip), "frame": 2})
    assert job.state == "failed"
    assert "every checkpoint" in job.reason and "damaged" in job.reason
    assert "step 3" in job.reason and f"step {TRAINED_STEPS}" in job.reason
    assert "NoneType" not in job.reason
    assert_moved_aside(p, 3)
    assert_moved_aside(p, TRAINED_STEPS)


def test_every_checkpoint_damaged_stops_training_with_one_clear_error(trained_project, tmp_path):
    p = copy_project(trained_project, tmp_path)
    damage(p, TRAINED_STEPS, "metadata")
    damage(p, 3, "data")
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": TRAINED_STEPS + 1})
    assert job.state == "failed"
    assert "every checkpoint" in job.reason and "facepair train" in job.reason
    assert model_io.read_status(p)["step"] == TRAINED_STEPS  # nothing trained over it


def test_a_reader_leaves_a_damaged_step_in_place_while_training_holds_the_model(trained_project, tmp_path):
    """A conversion while a training job runs uses the older step but does not move folders under
    the job's feet; the job (or the next reader) moves it."""
    from core.jobs import locks

    p = copy_project(trained_project, tmp_path)
    damage(p, TRAINED_STEPS, "metadata")
    locks.acquire(p, "model", "train-x")  # a training job holds the model lock (an flock: taken, not written)
    try:
        clip = Path(p.sources_of("a")[0].path)
        job = jobs.run_inline(p, "preview", {"input": str(clip), "frame": 2, "faces": "all"})
        assert job.state == "succeeded", job.reason
        assert [e["step"] for e in read_events(job.events_path) if e["type"] == "preview"] == [3]
        assert any("left it in place" in w for w in warnings_of(job))
        assert (model_io.checkpoint_dir(p) / str(TRAINED_STEPS)).is_dir()
    finally:
        locks.release(p, "model", "train-x")
