"""The "true face" code discriminator (`--true-face`): it learns A's codes from B's, its gradient
reaches the encoder only, and a model turns it on at a resume, keeps it and converts without it."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from core.jaxmodels import discriminator as gan
from core.jaxmodels import true_face as tf
from core.jaxmodels.presets import TRUE_FACE_MAX, get_preset
from core.jaxmodels.step import synthetic_faces
from core.jobs import control as jobs
from core.jobs.spec import OptionError
from core.train import model_io
from core.train import options as train_options
from tests.fixtures.train import TRAIN_ARGS, TRAINED_STEPS, checkpoint_at, job_events, micro_trainer
from tests.test_train import copy_project


def test_the_limits_agree():
    assert train_options.TRUE_FACE_MAX == TRUE_FACE_MAX


def test_the_code_discriminator_learns_to_tell_two_peoples_codes_apart():
    """Two clouds of 8×8 codes, shifted apart: a few Adam steps take D's loss well below chance."""
    d = tf.CodeDiscriminator(16, 8, rngs=nnx.Rngs(0))
    graph, params = nnx.split(d)
    params = nnx.to_pure_dict(params)
    rng = np.random.default_rng(0)
    za = jnp.asarray(rng.normal(0.5, 1.0, (32, 8, 8, 16)), jnp.float32)
    zb = jnp.asarray(rng.normal(-0.5, 1.0, (32, 8, 8, 16)), jnp.float32)

    def loss(p):
        m = nnx.merge(graph, p)
        return gan.discriminator_loss(m(za), m(zb))

    tx = optax.adam(1e-3)
    opt = tx.init(params)
    first = float(loss(params))
    assert first == pytest.approx(math.log(4), abs=0.3)
    step = jax.jit(lambda p, o: (lambda g: (optax.apply_updates(p, tx.update(g, o, p)[0]), tx.update(g, o, p)[1]))(
        jax.grad(loss)(p)))
    for _ in range(60):
        params, opt = step(params, opt)
    assert float(loss(params)) < 0.5 * math.log(4), (first, float(loss(params)))


def test_its_gradient_reaches_the_encoder_and_not_the_decoders():
    """One step from the same state and batch with and without the term: the decoders' weights
    move alike (the term is on the code), the encoder's differ; the losses reported are the
    reconstruction's alone."""
    plain, with_tf = micro_trainer(), micro_trainer(true_face=0.5)
    data = plain.put_data(synthetic_faces(plain.preset, 8))
    s0, s1 = plain.init_state(3), with_tf.init_state(3)
    assert not s0.code_disc and s1.code_disc and s1.code_disc_opt
    code_disc0 = jax.tree.map(np.array, s1.code_disc)
    s0, m0 = plain.train_steps(s0, data, 1)
    s1, m1 = with_tf.train_steps(s1, data, 1)
    for k in ("loss_a", "loss_b"):
        assert float(m1[k][0]) == pytest.approx(float(m0[k][0]), rel=1e-4)
    assert float(m1["true_face_g"][0]) == pytest.approx(math.log(2), abs=0.3)  # D at chance at step 0
    assert float(m1["true_face_d"][0]) > 0 and float(m0["true_face_d"][0]) == 0
    for part in ("decoder_a", "decoder_b"):
        for a, b in zip(jax.tree.leaves(s0.params[part]), jax.tree.leaves(s1.params[part]), strict=True):
            a, b = np.asarray(a), np.asarray(b)
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * max(1.0, float(np.abs(a).max())), err_msg=part)
    assert any(not np.allclose(np.asarray(a), np.asarray(b)) for a, b in
               zip(jax.tree.leaves(s0.params["encoder"]), jax.tree.leaves(s1.params["encoder"]), strict=True))
    assert any(not np.array_equal(np.asarray(a), b) for a, b in
               zip(jax.tree.leaves(s1.code_disc), jax.tree.leaves(code_disc0), strict=True))


def test_it_needs_the_df_architecture():
    import dataclasses

    with pytest.raises(ValueError, match="df architecture"):
        dataclasses.replace(get_preset("lite"), arch="liae", true_face=0.01)


@pytest.mark.parametrize("value", [-0.1, TRUE_FACE_MAX + 1])
def test_a_true_face_out_of_range_is_refused_before_the_job_starts(value):
    from core.jobs import kinds as jobkinds

    with pytest.raises(OptionError, match=r"--true-face"):
        jobkinds.check_args("train", {**TRAIN_ARGS, "true_face": value})


@pytest.mark.slow
def test_a_resume_turns_it_on_keeps_it_and_can_drop_it(trained_project, tmp_path):
    p = copy_project(trained_project, tmp_path)
    on = jobs.run_inline(p, "train", {**TRAIN_ARGS, "true_face": 0.01, "steps": TRAINED_STEPS + 2})
    assert on.state == "succeeded", on.reason
    said = [e["text"] for e in job_events(on, "message")]
    assert any("no true-face discriminator yet: it starts fresh" in t for t in said), said
    assert any("true-face code discriminator beside the model (power 0.01)" in t for t in said), said
    metrics = job_events(on, "metrics")
    assert metrics and all(0 < m["true_face_d"] < 10 and m["true_face_g"] > 0 for m in metrics), metrics
    flat, meta = checkpoint_at(p, TRAINED_STEPS + 2)
    assert meta["preset_config"]["true_face"] == 0.01
    code_disc = {k: v for k, v in flat.items() if k.startswith("code_disc.")}
    assert code_disc and any(k.startswith("code_disc_opt.") for k in flat)

    again = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": TRAINED_STEPS + 3})  # no options: kept on
    assert again.state == "succeeded", again.reason
    assert not any("starts fresh" in e["text"] for e in job_events(again, "message"))
    flat2, _ = checkpoint_at(p, TRAINED_STEPS + 3)
    assert any(not np.array_equal(flat2[k], v) for k, v in code_disc.items())  # trained on from the saved one
    assert model_io.load_model(p).step == TRAINED_STEPS + 3  # conversion reads the model's weights only

    off = jobs.run_inline(p, "train", {**TRAIN_ARGS, "true_face": 0.0, "steps": TRAINED_STEPS + 4})
    assert off.state == "succeeded", off.reason
    flat3, _ = checkpoint_at(p, TRAINED_STEPS + 4)
    assert not any(k.startswith("code_disc") for k in flat3)
    assert not any("true_face_d" in m for m in job_events(off, "metrics"))
