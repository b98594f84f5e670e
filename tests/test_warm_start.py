"""`facepair train NEW --init-from OTHER` (issue 15's warm start): which parts of another project's
model a new one starts from, the job that does it, and the record that travels with the model."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from core.jobs import control as jobs
from core.jobs.events import read_events
from core.project.projects import load_project
from core.train import model_io
from core.train.warm_start import carried_parts, compose
from tests.fixtures.train import TRAIN_ARGS, TRAINED_STEPS

SAME = {"a": "Astronaut", "b": "Hopper"}


def test_the_encoder_always_carries_over_and_a_decoder_only_with_its_person():
    assert carried_parts("df", SAME, SAME) == {"encoder": "encoder", "decoder_a": "decoder_a", "decoder_b": "decoder_b"}
    assert carried_parts("df", SAME, {"a": "astronaut ", "b": "Someone"}) == {"encoder": "encoder",
                                                                             "decoder_a": "decoder_a"}
    # The other model's B is this model's A: B's decoder becomes A's.
    assert carried_parts("df", SAME, {"a": "Hopper", "b": "Someone"}) == {"encoder": "encoder",
                                                                         "decoder_a": "decoder_b"}
    assert carried_parts("df", SAME, {"a": "X", "b": "Y"}) == {"encoder": "encoder"}
    shared = {"encoder": "encoder", "inter_ab": "inter_ab", "decoder": "decoder"}
    assert carried_parts("liae", SAME, {"a": "X", "b": "Hopper"}) == shared
    assert carried_parts("liae", SAME, {"a": "Astronaut", "b": "Y"}) == {**shared, "inter_a": "inter_a"}


def test_compose_takes_each_carried_part_from_the_other_model_and_keeps_the_rest():
    fresh = {"encoder": 1, "decoder_a": 2, "decoder_b": 3}
    other = {"encoder": 10, "decoder_a": 20, "decoder_b": 30}
    assert compose(fresh, other, {"encoder": "encoder", "decoder_a": "decoder_b"}) == \
        {"encoder": 10, "decoder_a": 30, "decoder_b": 3}


@pytest.fixture
def two_projects(trained_project, extracted_project, tmp_path):
    """In one home: the trained tiny model's project, and 'second' with the same faces, the same A
    (Astronaut) and another B, without a model."""
    home = tmp_path / "home"
    shutil.copytree(trained_project.root, home / trained_project.name, symlinks=True)
    shutil.copytree(extracted_project.root, home / "second", symlinks=True)
    second = dataclasses.replace(extracted_project,
                                 root=home / "second", name="second", label_b="Someone")
    second.save()
    return load_project(home, trained_project.name), load_project(home, "second")


def _params(project) -> dict:
    m = model_io.checkpoint_manager(model_io.checkpoint_dir(project), read_only=True)
    try:
        flat = model_io.read_state(m, m.latest_step())
    finally:
        m.close()
    return {k[len("params."):]: v for k, v in flat.items() if k.startswith("params.")}


def _part_gap(x: dict, y: dict, part: str) -> float:
    """The largest weight difference between two models in one part."""
    return max(float(np.abs(x[k] - y[k]).max()) for k in x if k.startswith(part + "."))


@pytest.mark.slow
def test_a_warm_start_begins_from_the_other_models_encoder_and_shared_person(two_projects):
    from core.export.job import provenance

    other, second = two_projects
    theirs = _params(other)
    refused = jobs.run_inline(second, "train", {**TRAIN_ARGS, "steps": 2, "init_from": other.name,
                                                "arch": "liae"})
    assert refused.state == "failed" and "it cannot be --arch liae" in refused.reason, refused.reason
    # Another seed: a fresh part differs from the other model's by tenths, a carried one by 1e-3.
    job = jobs.run_inline(second, "train", {**TRAIN_ARGS, "steps": 2, "seed": 7, "init_from": other.name})
    assert job.state == "succeeded", job.reason
    said = [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]
    assert (f"warm start from the model of project {other.name!r} at step {TRAINED_STEPS}: carried over: encoder, decoder_a; "
            "fresh: decoder_b") in said, said
    mine = _params(second)
    # Two Adam steps at lr 5e-4 move a weight by about 1e-3; fresh weights differ by tenths.
    assert _part_gap(mine, theirs, "encoder") < 0.01 and _part_gap(mine, theirs, "decoder_a") < 0.01
    assert _part_gap(mine, theirs, "decoder_b") > 0.1

    record = model_io.read_meta(*_manager_and_step(second))["init_from"]
    assert record["project"] == other.name and record["step"] == TRAINED_STEPS
    assert record["labels"] == {"a": "Astronaut", "b": "Hopper"} and record["consent"]["statement"]
    loaded = model_io.load_model(second)
    meta = provenance(second, loaded, "onnx", "a-to-b", False, 2.0, (0.5, 0.5))
    assert meta["facepair.init_from"]["project"] == other.name

    again = jobs.run_inline(second, "train", {**TRAIN_ARGS, "steps": 4, "init_from": other.name})
    assert again.state == "failed" and "--init-from starts a new model" in again.reason
    resumed = jobs.run_inline(second, "train", {**TRAIN_ARGS, "steps": 4})
    assert resumed.state == "succeeded", resumed.reason
    assert model_io.read_meta(*_manager_and_step(second))["init_from"]["project"] == other.name


def _manager_and_step(project):
    m = model_io.checkpoint_manager(model_io.checkpoint_dir(project), read_only=True)
    return m, m.latest_step()


def test_a_warm_start_from_nothing_usable_is_refused_with_the_reason(two_projects):
    other, second = two_projects
    for source, words in (("nosuch", "no project named 'nosuch'"), ("second", "names this project itself")):
        job = jobs.run_inline(second, "train", {**TRAIN_ARGS, "steps": 1, "init_from": source})
        assert job.state == "failed" and words in job.reason, job.reason
    job = jobs.run_inline(other, "train", {**TRAIN_ARGS, "steps": 1, "init_from": "second"})
    assert job.state == "failed" and "--init-from starts a new model" in job.reason
    shutil.rmtree(other.model_dir)
    job = jobs.run_inline(second, "train", {**TRAIN_ARGS, "steps": 1, "init_from": other.name})
    assert job.state == "failed" and "has no trained model yet" in job.reason, job.reason
