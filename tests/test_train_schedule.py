"""Issue 15's schedule levers: the moving average of the weights (EMA) and the learning-rate
schedule (warm-up, then a cosine decay to a floor). The EMA is the debiased average of the steps'
weights (its closed form), is kept in checkpoints and survives a resume (an old checkpoint starts
it from its weights), and is what previews, conversion and export load unless the raw weights are
asked for; the schedule is a function of the model's step, so a resume continues it."""

from __future__ import annotations

import dataclasses
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.jaxmodels.presets import get_preset
from core.jaxmodels.schedule import ema_decay_at, lr_factor
from core.jaxmodels.step import Trainer, synthetic_faces
from core.jobs import control as jobs
from core.jobs.spec import OptionError
from core.train import model_io
from tests.fixtures.train import TRAIN_ARGS, TRAINED_STEPS, job_events, micro_preset
from tests.test_train import checkpoint_params, copy_project
from tests.tolerance import sum_atol

DECAY = 0.9


def ema_closed_form(weights: list, decay: float):
    """Σᵢ (1−d) dⁿ⁻ⁱ pᵢ / (1 − dⁿ) over the weights after steps 1..n (float64)."""
    n = len(weights)
    w = np.array([(1 - decay) * decay ** (n - i) for i in range(1, n + 1)])
    w /= w.sum()
    return jax.tree.map(lambda *ps: sum(wi * np.asarray(p, np.float64) for wi, p in zip(w, ps, strict=True)),
                        *weights)


def assert_ema_is_closed_form(ema, weights: list, decay: float) -> None:
    """Each EMA tensor equals the closed form to float32 rounding of a few multiply-adds per step,
    scaled to the tensor's magnitude (a wrong decay or a missed step is off by a share of a step's move)."""
    want = ema_closed_form(weights, decay)
    for got, exp in zip(jax.tree.leaves(ema), jax.tree.leaves(want), strict=True):
        peak = max(float(np.abs(exp).max()), 1e-30)
        np.testing.assert_allclose(np.asarray(got, np.float64), exp, rtol=0,
                                   atol=sum_atol(4 * len(weights), peak))


def _train_micro(decay: float, steps: int, dtype=None):
    tr = Trainer(dataclasses.replace(micro_preset(), ema_decay=decay), TRAIN_ARGS["batch"], dtype=dtype)
    state = tr.init_state(0)
    data = tr.put_data(synthetic_faces(tr.preset, 8))
    weights = []
    for _ in range(steps):
        state, _ = tr.train_steps(state, data)
        weights.append(jax.tree.map(np.asarray, state.params))
    return state, weights


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["fp32", "bf16"])
def test_the_ema_is_the_debiased_average_of_the_steps_weights(dtype):
    state, weights = _train_micro(DECAY, 3, dtype)
    assert jax.tree.structure(state.ema) == jax.tree.structure(state.params)
    assert all(e.dtype == np.float32 for e in jax.tree.leaves(state.ema))  # fp32 beside fp32 master weights
    assert_ema_is_closed_form(state.ema, weights, DECAY)
    moved = max(float(np.abs(np.asarray(e) - p).max()) for e, p in
                zip(jax.tree.leaves(state.ema), jax.tree.leaves(weights[-1]), strict=True))
    assert moved > 1e-6, "the EMA is the last step's weights"


def test_the_ema_decay_is_debiased_and_tends_to_the_decay():
    d = np.asarray(ema_decay_at(0.999, jnp.arange(1, 6)))
    exact = [0.999 * (1 - 0.999 ** (n - 1)) / (1 - 0.999 ** n) for n in range(1, 6)]
    np.testing.assert_allclose(d, exact, rtol=1e-6)  # expm1 keeps the digits 1 − dⁿ would cancel
    assert d[0] == 0 and float(ema_decay_at(0.999, 100_000)) == pytest.approx(0.999, rel=1e-7)


def test_the_schedule_warms_up_then_decays_to_its_floor():
    p = dataclasses.replace(micro_preset(), warmup_steps=10, lr_decay="cosine", lr_decay_steps=110, lr_floor=0.1)
    f = lr_factor(p)
    at = {s: float(f(jnp.asarray(s, jnp.int32))) for s in (0, 4, 9, 59, 109, 500)}
    assert at[0] == pytest.approx(0.1) and at[4] == pytest.approx(0.5) and at[9] == pytest.approx(1.0)
    assert at[59] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 50 / 100)), rel=1e-6)  # 0.55
    assert at[109] == pytest.approx(0.1) and at[500] == pytest.approx(0.1)  # the floor, and it stays
    flat = lr_factor(dataclasses.replace(p, lr_decay="none"))
    assert [float(flat(jnp.asarray(s))) for s in (0, 9, 500)] == pytest.approx([0.1, 1.0, 1.0])
    with pytest.raises(ValueError, match="after the warm-up"):
        lr_factor(dataclasses.replace(p, lr_decay_steps=10))


SCHEDULE = {"ema_decay": DECAY, "lr_warmup": 2, "lr_decay": "cosine", "lr_decay_steps": 6}



def _state(project, step, only):
    m = model_io.checkpoint_manager(model_io.checkpoint_dir(project), read_only=True)
    try:
        return model_io.read_state(m, step, only=only), model_io.read_meta(m, step)
    finally:
        m.close()


@pytest.mark.slow
def test_ema_and_schedule_survive_a_resume_and_conversion_uses_the_ema(extracted_project, tmp_path):
    """Train 3 steps with the EMA and a cosine decay ending at step 6, resume to 6 without options:
    the weights and their average are those of one straight run to 6 (same process: equal to
    float rounding), the checkpoint records the settings, the last step ran at the floor, and
    the model loads its EMA for conversion unless asked for the raw weights."""
    from core.convert.converter import load_swapper, make_converter
    from core.convert.merge import MergeOptions

    resumed, straight = copy_project(extracted_project, tmp_path, "resumed"), copy_project(extracted_project, tmp_path, "straight")
    first = jobs.run_inline(resumed, "train", {**TRAIN_ARGS, **SCHEDULE, "steps": 3})
    assert first.state == "succeeded", first.reason
    said = [e["text"] for e in job_events(first, "message")]
    assert any("cosine down to 0.1 of it at step 6" in t for t in said), said
    assert any("moving average of the weights (decay 0.9)" in t for t in said)
    again = jobs.run_inline(resumed, "train", {**TRAIN_ARGS, "steps": 6})
    assert again.state == "succeeded", again.reason
    one = jobs.run_inline(straight, "train", {**TRAIN_ARGS, **SCHEDULE, "steps": 6})
    assert one.state == "succeeded", one.reason

    a, meta = _state(resumed, 6, ("params.", "ema."))
    b, _ = _state(straight, 6, ("params.", "ema."))
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)
    config = meta["preset_config"]
    assert (config["ema_decay"], config["lr_decay"], config["lr_decay_steps"], config["warmup_steps"]) == \
        (DECAY, "cosine", 6, 2)
    lr = get_preset("tiny").lr
    assert job_events(again, "metrics")[-1]["lr"] == pytest.approx(lr * 0.1, rel=1e-5)  # step 6: the floor

    ema = model_io.load_model(resumed)
    raw = model_io.load_model(resumed, weights="raw")
    assert (ema.weights, raw.weights) == ("ema", "raw")
    flat_ema = model_io.flatten(jax.tree.map(np.asarray, ema.params))
    flat_raw = model_io.flatten(jax.tree.map(np.asarray, raw.params))
    for k, v in flat_ema.items():
        np.testing.assert_array_equal(v, a[f"ema.{k}"])
        np.testing.assert_array_equal(flat_raw[k], a[f"params.{k}"])
    assert any(not np.array_equal(flat_ema[k], flat_raw[k]) for k in flat_ema)
    conv = make_converter(resumed, "a-to-b", MergeOptions(), "all", True)
    assert conv.swapper.weights == "ema"
    assert load_swapper(resumed, weights="raw").weights == "raw"


@pytest.mark.slow
def test_an_old_checkpoint_starts_its_ema_from_its_weights_and_can_drop_it(trained_project, tmp_path):
    p = copy_project(trained_project, tmp_path)
    assert model_io.load_model(p).weights == "raw"  # no EMA kept: the default falls back to the weights
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, **SCHEDULE, "steps": TRAINED_STEPS + 1})
    assert job.state == "succeeded", job.reason
    assert any("ema_decay 0.0 → 0.9" in e["text"] for e in job_events(job, "message"))
    before = checkpoint_params(p, TRAINED_STEPS)
    flat, _ = _state(p, TRAINED_STEPS + 1, ("params.", "ema."))
    d = float(ema_decay_at(DECAY, TRAINED_STEPS + 1))  # the average started at step 6's weights
    for k in before:
        name = k[len("params."):]
        np.testing.assert_allclose(flat[f"ema.{name}"], d * before[k] + (1 - d) * flat[k], rtol=0,
                                   atol=sum_atol(4, float(np.abs(before[k]).max()) + 1e-30), err_msg=k)
    off = jobs.run_inline(p, "train", {**TRAIN_ARGS, "ema_decay": 0.0, "steps": TRAINED_STEPS + 2})
    assert off.state == "succeeded", off.reason
    flat, _ = _state(p, TRAINED_STEPS + 2, ("params.", "ema."))
    assert not any(k.startswith("ema.") for k in flat) and model_io.load_model(p).weights == "raw"


@pytest.mark.parametrize("args,expect", [
    ({"ema_decay": 1.0}, r"--ema-decay must be 0 \(off\) or a decay below 1 such as 0.999 \(at most 0.99999\), not 1.0"),
    ({"ema_decay": -0.5}, r"--ema-decay must be 0 \(off\) or a decay below 1"),
    ({"lr_floor": 2.0}, r"--lr-floor 2.0 is out of range: use 0..1"),
    ({"lr_decay": "step"}, r"--lr-decay.*cosine"),
    ({"lr_warmup": -1}, r"--lr-warmup must be at least 0"),
])
def test_out_of_range_options_are_refused_before_the_job_starts(args, expect):
    from core.jobs import kinds as jobkinds

    with pytest.raises(OptionError, match=expect):  # what `facepair train`, the TUI and start_job check
        jobkinds.check_args("train", {**TRAIN_ARGS, **args})


def test_the_command_line_refuses_an_ema_decay_of_one(trained_project, tmp_path, capsys):
    from tui.cli.main import main

    p = copy_project(trained_project, tmp_path)
    assert main(["--home", str(p.home), "train", p.name, "--ema-decay", "1"]) == 2
    assert "--ema-decay must be 0 (off) or a decay below 1" in capsys.readouterr().err
    assert len([j for j in jobs.project_jobs(p) if j.kind == "train"]) == 1  # the fixture's own: none started


@pytest.mark.parametrize("args,expect", [
    ({"lr_decay": "cosine"}, r"--lr-decay cosine needs the step where it ends: pass --steps N"),
    ({"lr_decay": "cosine", "steps": 8, "lr_warmup": 10}, r"must end after the warm-up: step 8 is not after 10"),
])
def test_a_decay_without_an_end_after_the_warm_up_fails_before_compiling(trained_project, tmp_path, args, expect):
    p = copy_project(trained_project, tmp_path)
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, **args})
    assert job.state == "failed"
    assert re.search(expect, job.reason), job.reason
    assert not [e for e in job_events(job, "progress") if "compiling" in (e.get("stage") or "")]


def test_raw_weights_are_refused_with_the_onnx_engine(trained_project):
    from core.convert.converter import load_swapper
    from core.errors import FacepairError

    with pytest.raises(FacepairError, match="--weights raw runs in JAX only"):
        load_swapper(trained_project, engine="onnx", weights="raw")
