"""The training job on real aligned faces (the astronaut and Grace Hopper clips): files, events,
the loss falling, save → kill → resume, refusals before any compile, the NaN guard and recovery,
the fused multi-step dispatch, host streaming and `load_swapper`.

Most runs use TRAIN_ARGS in this process, so the step compiles once per session (with the
`trained_project` fixture); the kill test runs a detached job that finds the step in the
persistent compilation cache.
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from core.errors import FacepairError, LockHeld
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.project.projects import load_project
from core.train import model_io
from tests.fixtures.train import TRAIN_ARGS, TRAINED_STEPS, micro_preset
from tests.tolerance import assert_same_training, mean_rtol


def copy_project(src, tmp_path, name="home"):
    home = tmp_path / name
    shutil.copytree(src.root, home / src.name, symlinks=True)
    return load_project(home, src.name)


def events_of(job, type_=None):
    evs = read_events(job.events_path)
    return [e for e in evs if type_ is None or e["type"] == type_]


def checkpoint_params(project, step=None) -> dict[str, np.ndarray]:
    m = model_io.checkpoint_manager(model_io.checkpoint_dir(project), read_only=True)
    try:
        return model_io.read_state(m, step if step is not None else m.latest_step(), only="params.")
    finally:
        m.close()


def checkpoint_steps(project) -> list[int]:
    d = model_io.checkpoint_dir(project)
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


# ---- the trained fixture: files and events ------------------------------------------------------

def test_trained_project_has_model_files_and_events(trained_project):
    p = trained_project
    status = json.loads((p.model_dir / "status.json").read_text())
    assert status["preset"] == "tiny" and status["resolution"] == 32 and status["step"] == TRAINED_STEPS
    assert np.isfinite(status["loss_a"]) and np.isfinite(status["loss_b"])
    assert json.loads((p.model_dir / "config.json").read_text())["name"] == "tiny"
    assert checkpoint_steps(p) == [3, 6]

    holdout = json.loads((p.model_dir / "holdout.json").read_text())
    for side in ("a", "b"):
        names = {f.name for f in p.faces_dir(side).glob("*.png")}
        assert holdout[side], f"no held-out faces on side {side}"
        assert set(holdout[side]) <= names and len(holdout[side]) <= 0.2 * len(names)
        assert set(holdout["trained"][side]) == names - set(holdout[side])

    job = next(j for j in jobs.project_jobs(p) if j.kind == "train")
    assert job.state == "succeeded" and job.result["step"] == TRAINED_STEPS
    messages = [e["text"] for e in events_of(job, "message")]
    assert any(m.startswith("trains on the CPU") for m in messages)
    metrics = events_of(job, "metrics")
    assert metrics and metrics[-1]["step"] == TRAINED_STEPS
    for e in metrics:
        assert {"step", "loss_a", "loss_b", "lr", "elapsed_s", "device"} <= set(e)
    timed = [e for e in metrics if "images_per_s" in e]
    assert timed, "no metrics event carried images/s"
    assert all(e["images_per_s"] > 0 and e["steps_per_s"] > 0 and "eta_s" in e for e in timed)
    previews = events_of(job, "preview")
    assert [e["step"] for e in previews] == [3, 6]
    from PIL import Image

    newest = Image.open(previews[-1]["path"])
    assert newest.size[0] > newest.size[1] > 100
    assert (job.dir / "previews" / "00000003.png").is_file() and (job.dir / "previews" / "00000006.png").is_file()


def test_load_swapper_swaps_faces(trained_project):
    from core.faces.faceset import load_faceset

    sw = model_io.load_swapper(trained_project)
    assert (sw.preset, sw.resolution, sw.step, sw.has_mask) == ("tiny", 32, TRAINED_STEPS, True)
    faces = load_faceset(trained_project, "a", size=32).images[:5]
    rgb_b, mask_b = sw.swap(faces, "a-to-b")
    rgb_a, _ = sw.swap(faces, "a-to-a")
    assert rgb_b.shape == (5, 32, 32, 3) and rgb_b.dtype == np.float32
    assert mask_b.shape == (5, 32, 32) and mask_b.dtype == np.float32
    assert 0.0 <= rgb_b.min() and rgb_b.max() <= 1.0 and 0.0 <= mask_b.min() and mask_b.max() <= 1.0
    assert np.abs(rgb_a - rgb_b).mean() > 1e-4, "A→A and A→B decode identically"
    np.testing.assert_allclose(sw.swap(faces[:2], "a-to-b")[0], rgb_b[:2], atol=1e-5)
    with pytest.raises(FacepairError, match="32×32"):
        sw.swap(np.zeros((1, 64, 64, 3), np.uint8))


def test_load_swapper_without_model_names_train(project):
    with pytest.raises(FacepairError, match="facepair train pair"):
        model_io.load_swapper(project)


def test_holdout_is_fixed_as_faces_come_and_go():
    from core.train.job import choose_holdout

    names = [f"clip-abc123_{i:06d}_00.png" for i in range(60)]
    first = choose_holdout(names)
    assert 1 <= len(first) <= 12 and set(first) <= set(names)
    assert choose_holdout(list(reversed(names))) == first  # a rule of the names, not their order
    trained = sorted(set(names) - set(first))
    more = names + [f"photo-def456_{i:06d}_00.png" for i in range(40)]
    second = choose_holdout(more, first, trained)
    assert set(first) <= set(second) and not set(second) & set(trained)
    fewer = [n for n in more if n != first[0]]  # a held-out crop deleted
    assert choose_holdout(fewer, second, trained) == sorted(set(second) - {first[0]})
    assert choose_holdout(names[:7]) == []  # too few faces to keep any back


# ---- learning ---------------------------------------------------------------------------------

def test_loss_falls_on_real_faces(extracted_project, tmp_path):
    p = copy_project(extracted_project, tmp_path)
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 200, "save_every": 200, "preview_every": 200})
    assert job.state == "succeeded", job.reason
    m = events_of(job, "metrics")
    first, last = m[0], m[-1]
    assert first["step"] <= 5 and last["step"] == 200
    for side in ("loss_a", "loss_b"):
        assert last[side] < 0.6 * first[side], f"{side}: {first[side]:.3f} → {last[side]:.3f}"


# ---- resume -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_kill_then_resume_gives_the_uninterrupted_steps(extracted_project, tmp_path):
    """A detached job is stopped with SIGTERM mid-run (it saves at step S); resuming to S+3 gives
    the same weights as one uninterrupted run to S+3 (same CPU: equal to float rounding, 1e-6)."""
    p = copy_project(extracted_project, tmp_path, "killed")
    job = jobs.start_job(p, "train", {**TRAIN_ARGS, "save_every": 1000, "preview_every": 1000})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        done = [e.get("done") or 0 for e in events_of(job, "progress") if e.get("stage") == "training"]
        if done and max(done) >= 4:
            break
        assert jobs.load_job(job.dir).active, jobs.load_job(job.dir).reason
        time.sleep(0.2)
    else:
        pytest.fail("the detached job did not reach step 4 in 180 s")
    with pytest.raises(LockHeld, match="model lock held by job"):
        jobs.start_job(p, "train", TRAIN_ARGS)  # one training job per project at a time
    stopped = jobs.cancel_job(job, grace=60)
    assert stopped.state == "cancelled" and "killed" not in (stopped.reason or ""), stopped.reason
    s = json.loads((p.model_dir / "status.json").read_text())["step"]
    assert s >= 4 and checkpoint_steps(p) == [s]
    assert any("stopped at step" in e["text"] for e in events_of(stopped, "message"))

    resumed = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": s + 3})
    assert resumed.state == "succeeded", resumed.reason
    assert any(f"resumed from the checkpoint at step {s}" in e["text"] for e in events_of(resumed, "message"))
    ref = copy_project(extracted_project, tmp_path, "uninterrupted")
    straight = jobs.run_inline(ref, "train", {**TRAIN_ARGS, "steps": s + 3})
    assert straight.state == "succeeded", straight.reason
    a, b = checkpoint_params(p, s + 3), checkpoint_params(ref, s + 3)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)
    # and the resumed run did train: its weights moved from the checkpoint at S
    before = checkpoint_params(p, s) if s in checkpoint_steps(p) else None
    assert before is None or any(not np.array_equal(before[k], a[k]) for k in a)


def test_other_preset_is_refused_and_target_reached_is_a_no_op(trained_project, tmp_path):
    p = copy_project(trained_project, tmp_path)
    status = (p.model_dir / "status.json").read_text()
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "preset": "lite", "steps": 10})
    assert job.state == "failed"
    assert "'tiny' model at step 6" in job.reason and "--preset tiny" in job.reason
    assert (p.model_dir / "status.json").read_text() == status
    assert not [e for e in events_of(job, "progress") if "compiling" in (e.get("stage") or "")]

    job = jobs.run_inline(p, "train", {"steps": TRAINED_STEPS})  # no preset: the checkpoint's
    assert job.state == "succeeded", job.reason
    assert any("already at step 6" in e["text"] for e in events_of(job, "message"))
    assert checkpoint_steps(p) == [3, 6]


def _rewrite_checkpoint_with_raveled_moments(project, step):
    """Turn the checkpoint at `step` into the layout written before per-tensor Adam: each moment
    one vector of every parameter, in the params' leaf order (what ravel_pytree made)."""
    d = model_io.checkpoint_dir(project)
    m = model_io.checkpoint_manager(d, read_only=True)
    try:
        flat, meta = model_io.read_state(m, step), model_io.read_meta(m, step)
    finally:
        m.close()
    names = [k[len("params."):] for k in flat if k.startswith("params.")]
    old = {k: v for k, v in flat.items() if not k.startswith(("opt_state.1.mu.", "opt_state.1.nu."))}
    for moment in ("mu", "nu"):
        old[f"opt_state.1.{moment}"] = np.concatenate([flat[f"opt_state.1.{moment}.{n}"].ravel() for n in names])
    shutil.rmtree(d)
    m = model_io.checkpoint_manager(d)
    try:
        model_io.save_checkpoint(m, step, old, meta)
    finally:
        m.close()
    return old


def test_a_checkpoint_with_raveled_adam_moments_resumes_the_same(trained_project, tmp_path):
    """Checkpoints from before per-tensor Adam still resume, optimizer state included: one more
    step from the old layout gives exactly the weights one more step from today's gives."""
    new, old = copy_project(trained_project, tmp_path, "new"), copy_project(trained_project, tmp_path, "old")
    flat = _rewrite_checkpoint_with_raveled_moments(old, TRAINED_STEPS)
    assert "opt_state.1.mu" in flat and flat["opt_state.1.mu"].ndim == 1
    for p in (new, old):
        job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": TRAINED_STEPS + 1})
        assert job.state == "succeeded", job.reason
        assert any(f"resumed from the checkpoint at step {TRAINED_STEPS}" in e["text"] for e in events_of(job, "message"))
    a, b = checkpoint_params(new, TRAINED_STEPS + 1), checkpoint_params(old, TRAINED_STEPS + 1)
    assert a.keys() == b.keys() and len(a) > 20
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_an_optimizer_state_of_another_size_is_refused():
    from types import SimpleNamespace

    template = SimpleNamespace(params={"w": np.zeros((2, 3)), "b": np.zeros(3)})
    ok = model_io.upgrade_flat_state({"opt_state.1.mu": np.arange(9.0)}, template)
    np.testing.assert_array_equal(ok["opt_state.1.mu.b"], [0, 1, 2])  # leaf order: sorted keys
    np.testing.assert_array_equal(ok["opt_state.1.mu.w"], [[3, 4, 5], [6, 7, 8]])
    with pytest.raises(FacepairError, match="holds 8 values for 9 parameters"):
        model_io.upgrade_flat_state({"opt_state.1.mu": np.zeros(8)}, template)


# ---- clear errors before any compile ----------------------------------------------------------

def _no_faces_b(p):
    for f in p.faces_dir("b").glob("*.png"):
        f.unlink()


def _three_faces_a(p):
    for f in sorted(p.faces_dir("a").glob("*.png"))[3:]:
        f.unlink()


def _mixed_sizes_a(p):
    import cv2

    for f in sorted(p.faces_dir("a").glob("*.png"))[:2]:
        img = cv2.imread(str(f))
        cv2.imwrite(str(f), cv2.resize(img, (48, 48)))


@pytest.mark.parametrize("damage,expect", [
    (_no_faces_b, r"side b of project 'synthpair' has no faces.*facepair extract"),
    (_three_faces_a, r"side a of 'synthpair' has 3 usable faces to train on; training needs at least 4"),
    (_mixed_sizes_a, r"side a of 'synthpair' has faces of mixed sizes \(30 of 64 px, 2 of 48 px; e\.g\. \S+ is not 64 px\)"),
])
def test_bad_faces_fail_clearly_before_compiling(extracted_project, tmp_path, damage, expect):
    import re

    p = copy_project(extracted_project, tmp_path)
    damage(p)
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 5})
    assert job.state == "failed"
    assert re.search(expect, job.reason), job.reason
    assert not [e for e in events_of(job, "progress") if "compiling" in (e.get("stage") or "")]
    assert not model_io.checkpoint_dir(p).is_dir() or not checkpoint_steps(p)


# ---- non-finite steps ---------------------------------------------------------------------------

def test_nan_guard_skips_a_non_finite_batch():
    import jax

    from core.jaxmodels.step import Batch
    from core.train.job import get_trainer

    tr = get_trainer(micro_preset(), TRAIN_ARGS["batch"], False, None)
    state = tr.init_state(0)
    rng = np.random.default_rng(0)
    b, r = TRAIN_ARGS["batch"], tr.preset.resolution
    imgs = rng.uniform(size=(6, b, r, r, 3)).astype(np.float32)
    maps = np.zeros((b, r, r, 3), np.float32)
    maps[:, 3:13, 3:13, 0] = 1
    good = Batch(imgs[0], imgs[1], maps, imgs[2], imgs[3], maps)
    bad_in = imgs[4].copy()
    bad_in[0, 5, 5, 1] = np.nan  # one non-finite pixel in B's inputs
    bad = good._replace(in_b=bad_in)
    before = jax.tree.map(np.array, state.params)
    state, m = tr.apply_batch(state, bad)
    assert not bool(m["finite"]) and not np.isfinite(float(m["loss_b"]))
    after = jax.tree.map(np.array, state.params)
    for x, y in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        np.testing.assert_array_equal(x, y)
    assert int(state.skipped) == 1 and int(state.bad_streak) == 1 and int(state.step) == 1
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(after))
    state, m = tr.apply_batch(state, good)
    assert bool(m["finite"]) and int(state.bad_streak) == 0 and int(state.skipped) == 1
    moved = jax.tree.map(np.array, state.params)
    assert any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(after), jax.tree.leaves(moved), strict=True))


def test_adam_direction_is_optax_update():
    """The step reads Adam's direction from the stored moments (so XLA need not copy them); it must
    be what optax's clip-then-Adam chain returns as its update, step after step."""
    import jax
    import jax.numpy as jnp

    from core.jaxmodels import step

    rng = np.random.default_rng(3)
    params = {"w": jnp.asarray(rng.normal(size=(5, 4)), jnp.float32), "b": jnp.zeros((4,), jnp.float32)}
    tx = step._optimizer(1.0)
    state = tx.init(params)
    for i in range(4):
        grads = jax.tree.map(lambda p, i=i: jnp.asarray(rng.normal(size=p.shape) * (0.1 + i), jnp.float32), params)
        updates, state = tx.update(grads, state, params)
        direction = step._adam_direction(state[1])
        for u, d in zip(jax.tree.leaves(updates), jax.tree.leaves(direction), strict=True):
            # 1e-4: 1 - 0.999**t is ~0.003 here, so the last bit of a power (compiled once inside
            # optax's jitted helper, once eagerly here) shows up 300-fold; a wrong formula is off by far more
            np.testing.assert_allclose(np.asarray(d), np.asarray(u), rtol=1e-4, atol=1e-6)


def test_repeated_non_finite_steps_restore_lower_lr_then_give_up(extracted_project, tmp_path):
    """lr 1e30 blows the weights up on the first step, so every later step is non-finite: the job
    restores and halves the learning rate MAX_RECOVERIES times, then fails with advice; what it
    saved is finite."""
    from core.train.job import MAX_RECOVERIES

    p = copy_project(extracted_project, tmp_path)
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "lr": 1e30, "steps": 500})
    assert job.state == "failed"
    assert "non-finite" in job.reason and "lower --lr" in job.reason
    warnings = [e["text"] for e in events_of(job, "message") if e["level"] == "warning"]
    lowered = [w for w in warnings if "lowered the learning rate" in w]
    assert len(lowered) == MAX_RECOVERIES
    assert "from 1e+30 to 5e+29" in lowered[0]
    for step in checkpoint_steps(p):
        assert all(np.isfinite(v).all() for v in checkpoint_params(p, step).values())


# ---- the fused dispatch and host streaming --------------------------------------------------

def test_fused_steps_equal_single_steps(extracted_project):
    """steps_per_call=3 (lax.scan, what accelerators use) gives the losses and weights of 3 single
    dispatches; a partial dispatch runs exactly n steps."""
    import jax

    from core.jaxmodels.step import FaceData
    from core.train.job import get_trainer, load_side

    micro = micro_preset()
    sides = {s: load_side(extracted_project, s, micro.resolution, []) for s in ("a", "b")}
    host = FaceData(sides["a"].faces, sides["a"].maps, sides["b"].faces, sides["b"].maps)
    one = get_trainer(micro, TRAIN_ARGS["batch"], False, None)
    three = get_trainer(micro, TRAIN_ARGS["batch"], False, 3)
    assert one.steps_per_call == 1 and three.steps_per_call == 3
    s1, s3 = one.init_state(0), three.init_state(0)
    start = {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(one.init_state(0).params))}
    d1, d3 = one.put_data(host), three.put_data(host)
    losses1 = []
    for _ in range(3):
        s1, m = one.train_steps(s1, d1)
        losses1.append(float(m["loss_a"][0]))
    s3, m3 = three.train_steps(s3, d3)
    # a loss is a mean of batch·res²·3 non-negative terms; the weights took 3 Adam steps
    terms = TRAIN_ARGS["batch"] * micro.resolution ** 2 * 3
    np.testing.assert_allclose(np.asarray(m3["loss_a"]), losses1, rtol=mean_rtol(terms))
    single = {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(s1.params))}
    fused = {str(i): np.asarray(x) for i, x in enumerate(jax.tree.leaves(s3.params))}
    assert_same_training(fused, single, start, micro.lr, 3)
    assert micro.ema_decay == 0 and s1.ema == {} and s3.ema == {}  # with the EMA off, none is kept
    s3, m = three.train_steps(s3, d3, 2)
    assert int(s3.step) == 5 and np.asarray(m["done"]).tolist() == [True, True, False]


def test_streaming_from_host_with_fused_steps(extracted_project, tmp_path):
    """The job's host-streaming mode, dispatching up to 4 steps at a time: dispatches end exactly on
    the saves (3, 6) and the target (7)."""
    p = copy_project(extracted_project, tmp_path)
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 7, "stream": True, "keep": 2, "steps_per_call": 4})
    assert job.state == "succeeded", job.reason
    assert any("streamed from the host" in e["text"] for e in events_of(job, "message"))
    assert checkpoint_steps(p) == [6, 7]  # saved at 3, 6 and 7; kept the newest two
    assert [e["step"] for e in events_of(job, "preview")] == [3, 6]
    assert np.isfinite(job.result["loss_a"]) and np.isfinite(job.result["loss_b"])


# ---- the command line ---------------------------------------------------------------------------

def test_cli_refuses_bad_options_before_starting(extracted_project, tmp_path, capsys):
    from tui.cli.main import main

    p = copy_project(extracted_project, tmp_path)
    home = str(p.home)
    assert main(["--home", home, "train", p.name, "--steps", "0"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
    assert main(["--home", home, "train", p.name, "--coordinator", "localhost:1234"]) == 2
    assert "needs all three" in capsys.readouterr().err
    assert main(["--home", home, "train", p.name, "--coordinator", "h:1", "--num-processes", "2",
                 "--process-id", "0"]) == 2
    assert "needs --preset" in capsys.readouterr().err
    assert not [j for j in jobs.project_jobs(p) if j.kind == "train"]
