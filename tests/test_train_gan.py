"""The optional patch discriminator (`--gan-power`): its losses, its place in the step, and a model
that turns it on at a resume, keeps it across resumes and can drop it."""

from __future__ import annotations

import math

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from core.jaxmodels import discriminator as gan
from core.jaxmodels.presets import GAN_POWER_MAX
from core.jaxmodels.step import Batch, synthetic_faces
from core.jobs import control as jobs
from core.jobs.spec import OptionError
from core.train import model_io
from core.train import options as train_options
from tests.fixtures.train import TRAIN_ARGS, TRAINED_STEPS, checkpoint_at, job_events, micro_trainer
from tests.test_train import copy_project


def test_the_losses_at_chance_are_log_two_per_term():
    zero = jnp.zeros((2, 4, 4))
    assert float(gan.generator_loss(zero)) == pytest.approx(math.log(2), rel=1e-6)
    assert float(gan.discriminator_loss(zero, zero)) == pytest.approx(math.log(4), rel=1e-6)
    assert train_options.GAN_POWER_MAX == GAN_POWER_MAX


def test_the_discriminator_learns_to_tell_sharp_faces_from_blurred_ones():
    rng = np.random.default_rng(0)
    sharp = rng.uniform(0, 1, (16, 32, 32, 3)).astype(np.float32)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in sharp])
    d = gan.PatchDiscriminator(8, rngs=nnx.Rngs(0))
    graph, params = nnx.split(d)
    params = nnx.to_pure_dict(params)
    assert d(jnp.asarray(sharp)).shape == (16, 4, 4)  # one logit per 8×8 patch
    tx = optax.adam(2e-3)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt):
        def loss(p):
            net = nnx.merge(graph, p)
            return gan.discriminator_loss(net(sharp), net(blurred))
        value, grads = jax.value_and_grad(loss)(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, value

    first = None
    for _ in range(60):
        params, opt, value = step(params, opt)
        first = float(value) if first is None else first
    assert first == pytest.approx(math.log(4), abs=0.2)
    assert float(value) < 0.5 * math.log(4), (first, float(value))


def _trainers():
    return micro_trainer(), micro_trainer(gan_power=0.5)


def test_the_adversarial_term_moves_the_weights_and_not_the_reported_losses():
    plain, adv = _trainers()
    data = plain.put_data(synthetic_faces(plain.preset, 8))
    s_plain, s_adv = plain.init_state(3), adv.init_state(3)
    np.testing.assert_array_equal(*(np.asarray(jax.tree.leaves(s.params)[0]) for s in (s_plain, s_adv)))
    assert not s_plain.disc and s_adv.disc
    disc0 = jax.tree.map(np.array, s_adv.disc)
    s_plain, m_plain = plain.train_steps(s_plain, data, 1)
    s_adv, m_adv = adv.train_steps(s_adv, data, 1)
    # The same weights on the same batch: the same reconstruction losses, reported without the GAN
    # term (≈ 0.35 at power 0.5); the two programs may sum the batch's ~3,000 terms in other orders.
    for k in ("loss_a", "loss_b"):
        assert float(m_adv[k][0]) == pytest.approx(float(m_plain[k][0]), rel=1e-4)
    assert float(m_adv["gan_g"][0]) > 0 and float(m_adv["gan_d"][0]) > 0 and float(m_plain["gan_d"][0]) == 0
    moved = [not np.allclose(np.asarray(a), np.asarray(b)) for a, b in
             zip(jax.tree.leaves(s_plain.params), jax.tree.leaves(s_adv.params), strict=True)]
    assert any(moved)  # the discriminator's gradient reached the model
    assert any(not np.array_equal(np.asarray(a), b) for a, b in
               zip(jax.tree.leaves(s_adv.disc), jax.tree.leaves(disc0), strict=True))


def test_a_non_finite_step_leaves_the_discriminator_alone():
    _, adv = _trainers()
    state = adv.init_state(0)
    before = jax.tree.map(np.array, (state.disc, state.disc_opt))
    r = adv.preset.resolution
    nan = jnp.full((4, r, r, 3), jnp.nan)
    ones = jnp.ones((4, r, r, 0))
    state, m = adv.apply_batch(state, Batch(nan, nan, ones, nan, nan, ones))
    assert not bool(m["finite"])
    for a, b in zip(jax.tree.leaves((state.disc, state.disc_opt)), jax.tree.leaves(before), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)




@pytest.mark.slow
def test_a_resume_turns_the_discriminator_on_keeps_it_and_can_drop_it(trained_project, tmp_path):
    p = copy_project(trained_project, tmp_path)
    on = jobs.run_inline(p, "train", {**TRAIN_ARGS, "gan_power": 0.1, "steps": TRAINED_STEPS + 2})
    assert on.state == "succeeded", on.reason
    said = [e["text"] for e in job_events(on, "message")]
    assert any("no discriminator yet: it starts fresh" in t for t in said), said
    assert any("patch discriminator beside the model (GAN power 0.1)" in t for t in said), said
    metrics = job_events(on, "metrics")
    assert metrics and all(0 < m["gan_d"] < 10 and m["gan_g"] > 0 for m in metrics), metrics
    flat, meta = checkpoint_at(p, TRAINED_STEPS + 2)
    assert meta["preset_config"]["gan_power"] == 0.1
    disc = {k: v for k, v in flat.items() if k.startswith("disc.")}
    assert disc and any(k.startswith("disc_opt.") for k in flat)

    again = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": TRAINED_STEPS + 3})  # no options: kept on
    assert again.state == "succeeded", again.reason
    assert not any("starts fresh" in e["text"] for e in job_events(again, "message"))
    flat2, meta2 = checkpoint_at(p, TRAINED_STEPS + 3)
    assert meta2["preset_config"]["gan_power"] == 0.1 and disc.keys() <= flat2.keys()
    assert any(not np.array_equal(flat2[k], v) for k, v in disc.items())  # trained on from the saved one
    assert model_io.load_model(p).step == TRAINED_STEPS + 3  # conversion reads the model's weights only

    off = jobs.run_inline(p, "train", {**TRAIN_ARGS, "gan_power": 0.0, "steps": TRAINED_STEPS + 4})
    assert off.state == "succeeded", off.reason
    flat3, _ = checkpoint_at(p, TRAINED_STEPS + 4)
    assert not any(k.startswith("disc") for k in flat3)
    assert not any("gan_d" in m for m in job_events(off, "metrics"))


@pytest.mark.slow
def test_the_discriminator_joins_at_gan_from_and_a_resume_keeps_the_step(trained_project, tmp_path):
    """--gan-from N: the plain step until N (the checkpoint records N), then the discriminator joins
    fresh in the same run; a resume before N without options keeps it."""
    p = copy_project(trained_project, tmp_path)
    join = TRAINED_STEPS + 2
    before = jobs.run_inline(p, "train", {**TRAIN_ARGS, "gan_power": 0.1, "gan_from": join,
                                          "steps": TRAINED_STEPS + 1})
    assert before.state == "succeeded", before.reason
    said = [e["text"] for e in job_events(before, "message")]
    assert any(f"patch discriminator beside the model from step {join} (GAN power 0.1)" in t for t in said), said
    assert not any("joins" in t for t in said) and not any("gan_d" in m for m in job_events(before, "metrics"))
    flat, meta = checkpoint_at(p, TRAINED_STEPS + 1)
    assert (meta["preset_config"]["gan_power"], meta["preset_config"]["gan_from"]) == (0.1, join)
    assert not any(k.startswith("disc") for k in flat)  # the plain step ran: no discriminator yet

    after = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": join + 2})  # no options: the recorded ones
    assert after.state == "succeeded", after.reason
    said = [e["text"] for e in job_events(after, "message")]
    assert any(f"step {join}: the patch discriminator joins" in t for t in said), said
    flat2, meta2 = checkpoint_at(p, join + 2)
    assert meta2["preset_config"]["gan_from"] == join and any(k.startswith("disc.") for k in flat2)
    assert [m for m in job_events(after, "metrics") if "gan_d" in m]  # it trained after joining
    assert all(m["step"] > join for m in job_events(after, "metrics") if "gan_d" in m)


@pytest.mark.slow
def test_gan_from_in_one_run_trains_the_model_a_resume_that_turns_it_on_does(trained_project, tmp_path):
    """The benchmarks measured the late discriminator as a resume (bench quality --then); the preset
    turns it on with gan_from. Both give the same weights."""
    join, end = TRAINED_STEPS + 1, TRAINED_STEPS + 3
    one = copy_project(trained_project, tmp_path, "one")
    job = jobs.run_inline(one, "train", {**TRAIN_ARGS, "gan_power": 0.1, "gan_from": join, "steps": end})
    assert job.state == "succeeded", job.reason
    two = copy_project(trained_project, tmp_path, "two")
    for args in ({"steps": join}, {"gan_power": 0.1, "steps": end}):
        job = jobs.run_inline(two, "train", {**TRAIN_ARGS, **args})
        assert job.state == "succeeded", job.reason
    (a, _), (b, _) = checkpoint_at(one, end), checkpoint_at(two, end)
    assert a.keys() == b.keys() and any(k.startswith("disc.") for k in a)
    for k in a:  # the same program on the same state: equal up to the order XLA sums in
        scale = max(1.0, float(np.abs(b[k]).max())) if b[k].size else 1.0
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-5 * scale, err_msg=k)


@pytest.mark.slow
def test_gan_warp_in_one_run_trains_the_model_a_resume_without_the_warp_does(trained_project, tmp_path):
    """--gan-warp 0: the discriminator's steps without the random warp, as the benchmark measured it
    (a resume at gan_from with --gan-power and --warp 0); the plain steps before keep the warp."""
    join, end = TRAINED_STEPS + 1, TRAINED_STEPS + 3
    one = copy_project(trained_project, tmp_path, "one")
    job = jobs.run_inline(one, "train", {**TRAIN_ARGS, "gan_power": 0.1, "gan_from": join, "gan_warp": 0.0,
                                         "steps": end})
    assert job.state == "succeeded", job.reason
    said = [e["text"] for e in job_events(job, "message")]
    assert any(f"step {join}: the patch discriminator joins (GAN power 0.1, random warp 0)" in t for t in said), said
    two = copy_project(trained_project, tmp_path, "two")
    for args in ({"steps": join}, {"gan_power": 0.1, "warp": 0.0, "steps": end}):
        job = jobs.run_inline(two, "train", {**TRAIN_ARGS, **args})
        assert job.state == "succeeded", job.reason
    (a, meta), (b, _) = checkpoint_at(one, end), checkpoint_at(two, end)
    config = meta["preset_config"]
    assert config["gan_warp"] == 0.0 and config["augment"]["warp"] > 0  # recorded; the plain steps keep it
    for k in a:  # the same program on the same state: equal up to the order XLA sums in
        scale = max(1.0, float(np.abs(b[k]).max())) if b[k].size else 1.0
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-5 * scale, err_msg=k)
    warped = copy_project(trained_project, tmp_path, "warped")  # the warp on: another model
    job = jobs.run_inline(warped, "train", {**TRAIN_ARGS, "gan_power": 0.1, "gan_from": join, "steps": end})
    assert job.state == "succeeded", job.reason
    c, _ = checkpoint_at(warped, end)
    assert any(np.abs(a[k] - c[k]).max() > 1e-3 * max(1.0, float(np.abs(c[k]).max())) for k in a if a[k].size)


def test_a_gan_warp_out_of_range_is_refused_before_the_job_starts():
    from core.jobs import kinds as jobkinds

    with pytest.raises(OptionError, match=r"--gan-warp"):
        jobkinds.check_args("train", {**TRAIN_ARGS, "gan_warp": 0.5})


@pytest.mark.parametrize("value", [-0.1, GAN_POWER_MAX + 1])
def test_a_gan_power_out_of_range_is_refused_before_the_job_starts(value):
    from core.jobs import kinds as jobkinds

    with pytest.raises(OptionError, match=r"--gan-power"):
        jobkinds.check_args("train", {**TRAIN_ARGS, "gan_power": value})
