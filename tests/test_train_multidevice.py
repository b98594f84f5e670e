"""Data parallelism: 4 CPU devices in one process, and two processes joined by jax.distributed.

Both must follow the single-device run: the per-step randomness does not depend on how the batch
is sharded (threefry is partitionable), so only the order of the gradient sums differs. Stated
tolerance (tests/tolerance.py): loss curves within batch·res²·3·eps (relative: each loss is a mean
of that many terms); weights as Adam allows after that many steps of float noise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.jaxmodels.presets import get_preset
from core.project.projects import load_project
from tests.fixtures.train import TRAIN_ARGS, micro_preset
from tests.tolerance import assert_same_training, mean_rtol, training_gap

ROOT = Path(__file__).resolve().parent.parent
STEPS = 8


def run_curve(faces_npz: str, steps: int = STEPS, batch: int = TRAIN_ARGS["batch"], ema_decay: float = 0.0) -> dict:
    """Train the micro model on the saved faces over all devices of this process; the loss curve
    (and with `ema_decay`, how far the moving average is from its closed form, in units of its tolerance)."""
    import dataclasses

    import jax

    from core.jaxmodels.step import FaceData
    from core.train.job import get_trainer

    d = np.load(faces_npz)
    tr = get_trainer(dataclasses.replace(micro_preset(), ema_decay=ema_decay), batch, False, None)
    state = tr.init_state(0)
    data = tr.put_data(FaceData(d["fa"], d["ma"], d["fb"], d["mb"]))
    hlo = tr._train.lower(state, data, np.int32(1)).compile().as_text()
    la, lb, weights = [], [], []
    for _ in range(steps):
        state, m = tr.train_steps(state, data)
        la.append(float(np.asarray(m["loss_a"])[0]))
        lb.append(float(np.asarray(m["loss_b"])[0]))
        if ema_decay:
            weights.append(jax.tree.map(np.asarray, state.params))
    ema = {}
    if ema_decay:
        from tests.test_train_schedule import ema_closed_form
        from tests.tolerance import sum_atol

        want = jax.tree.leaves(ema_closed_form(weights, ema_decay))
        ema = {"ema_replicated": all(x.sharding.is_fully_replicated for x in jax.tree.leaves(state.ema)),
               "ema_error": max(float(np.abs(np.asarray(g, np.float64) - w).max())
                                / sum_atol(4 * steps, max(float(np.abs(w).max()), 1e-30))
                                for g, w in zip(jax.tree.leaves(state.ema), want, strict=True))}
    return {**ema,"devices": jax.device_count(), "mesh": int(tr.mesh.size), "loss_a": la, "loss_b": lb,
            "all_reduce": "all-reduce" in hlo,
            "params_replicated": all(x.sharding.is_fully_replicated for x in jax.tree.leaves(state.params)),
            "dtype": str(tr.dtype.__name__ if hasattr(tr.dtype, "__name__") else tr.dtype),
            "params_fp32": all(x.dtype == np.float32 for x in jax.tree.leaves(state.params))}


@pytest.fixture(scope="module")
def faces_npz(extracted_project, tmp_path_factory) -> str:
    from core.train.job import load_side

    sides = {s: load_side(extracted_project, s, micro_preset().resolution, []) for s in ("a", "b")}
    path = tmp_path_factory.mktemp("multidevice") / "faces.npz"
    np.savez(path, fa=sides["a"].faces, ma=sides["a"].maps, fb=sides["b"].faces, mb=sides["b"].maps)
    return str(path)


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


@pytest.mark.slow
def test_four_cpu_devices_follow_one(faces_npz):
    one = run_curve(faces_npz)
    assert one["devices"] == 1
    code = f"import json; from tests.test_train_multidevice import run_curve; print(json.dumps(run_curve({faces_npz!r})))"
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert p.returncode == 0, p.stderr[-3000:]
    four = json.loads(p.stdout.strip().splitlines()[-1])
    assert four["devices"] == 4 and four["mesh"] == 4
    assert four["all_reduce"], "the 4-device step has no gradient all-reduce: the batch is not sharded"
    assert four["params_replicated"]
    rtol = mean_rtol(TRAIN_ARGS["batch"] * micro_preset().resolution ** 2 * 3)  # a loss: a mean of that many terms
    np.testing.assert_allclose(four["loss_a"], one["loss_a"], rtol=rtol)
    np.testing.assert_allclose(four["loss_b"], one["loss_b"], rtol=rtol)
    assert four["loss_a"][-1] < four["loss_a"][0] or four["loss_b"][-1] < four["loss_b"][0]


@pytest.mark.slow
def test_four_cpu_devices_keep_the_ema_replicated_and_exact(faces_npz):
    """The moving average of the weights under data parallelism: replicated like the weights, and
    the debiased average of the steps' weights (error in units of its float32 tolerance)."""
    code = (f"import json; from tests.test_train_multidevice import run_curve; "
            f"print(json.dumps(run_curve({faces_npz!r}, steps=3, ema_decay=0.9)))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert p.returncode == 0, p.stderr[-3000:]
    four = json.loads(p.stdout.strip().splitlines()[-1])
    assert four["devices"] == 4 and four["all_reduce"] and four["params_replicated"]
    assert four["ema_replicated"] and four["ema_error"] <= 1.0, four


@pytest.mark.slow
def test_eight_cpu_devices_in_bf16(faces_npz, monkeypatch):
    """Data parallelism with the GPU's precision (bf16 compute, fp32 weights) over 8 simulated
    devices: sharded, reduced, falling; its first loss is the one-device bf16 run's (the same
    weights and faces, the sums in another order: within bf16's rounding of a mean)."""
    monkeypatch.setenv("FACEPAIR_COMPUTE_DTYPE", "bfloat16")
    one = run_curve(faces_npz, steps=1, batch=8)
    assert "bfloat16" in one["dtype"]
    code = (f"import json; from tests.test_train_multidevice import run_curve; "
            f"print(json.dumps(run_curve({faces_npz!r}, batch=8)))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=8",
                                FACEPAIR_COMPUTE_DTYPE="bfloat16"))
    assert p.returncode == 0, p.stderr[-3000:]
    eight = json.loads(p.stdout.strip().splitlines()[-1])
    assert eight["devices"] == 8 and eight["mesh"] == 8 and "bfloat16" in eight["dtype"]
    assert eight["all_reduce"] and eight["params_replicated"] and eight["params_fp32"]
    assert all(np.isfinite(eight["loss_a"] + eight["loss_b"]))
    assert eight["loss_a"][-1] < eight["loss_a"][0] or eight["loss_b"][-1] < eight["loss_b"][0]
    np.testing.assert_allclose(eight["loss_a"][0], one["loss_a"][0], rtol=2e-2)
    np.testing.assert_allclose(eight["loss_b"][0], one["loss_b"][0], rtol=2e-2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_localhost(extracted_project, tmp_path):
    """`facepair train` on two 'hosts' (two processes, two homes holding the same faces) joined by
    jax.distributed: both finish, process 0 alone writes the model, and it matches one process."""
    from tests.test_train import checkpoint_params, checkpoint_steps, copy_project

    homes = [tmp_path / f"host{i}" for i in range(2)]
    for h in homes:
        shutil.copytree(extracted_project.root, h / extracted_project.name, symlinks=True)
    port = _free_port()
    args = ["train", extracted_project.name, "--preset", "tiny", "--batch", str(TRAIN_ARGS["batch"]),
            "--steps", "6", "--save-every", "3", "--preview-every", "3",
            "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    procs = [subprocess.Popen([sys.executable, "-m", "tui.cli.main", "--home", str(h), *args, "--process-id", str(i)],
                              cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, h in enumerate(homes)]
    try:
        # If one process fails the other would wait for it in a collective: stop it soon after.
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            if any(p.poll() not in (None, 0) for p in procs):
                deadline = min(deadline, time.monotonic() + 10)
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outs = [" ".join(p.stdout.read().split()) for p in procs]  # undo the terminal's line wrapping
    for i, (p, out) in enumerate(zip(procs, outs, strict=True)):
        assert p.returncode == 0, f"process {i}:\n{out[-3000:]}"
        assert f"across 2 processes (this is process {i})" in out, out[-2000:]
        assert "trains on 2 CPU devices" in out
    p0, p1 = (load_project(h, extracted_project.name) for h in homes)
    assert checkpoint_steps(p0) == [3, 6]
    assert json.loads((p0.model_dir / "status.json").read_text())["step"] == 6
    assert checkpoint_steps(p1) == [] and not (p1.model_dir / "status.json").exists()

    ref = copy_project(extracted_project, tmp_path, "single")
    from core.jobs import control as jobs

    job = jobs.run_inline(ref, "train", {**TRAIN_ARGS, "steps": 6})
    assert job.state == "succeeded", job.reason
    a, b = checkpoint_params(p0, 6), checkpoint_params(ref, 6)
    # The two runs sum each gradient in another order (two half batches, then across processes),
    # and Adam divides by the gradient's own scale: an element whose gradient is ~0 can move by a
    # fair part of the learning rate on that float noise alone (seen in full-suite runs: 2 of
    # 2,304 elements 4e-5 apart; once 3 % of a residual block's kernel over 1e-5). So: every
    # weight within Adam's bound, and the runs apart by a small share of how far the reference
    # moved in its last 3 steps (a real error moves them apart about as far as they moved).
    print(f"two processes vs one: {training_gap(a, b, checkpoint_params(ref, 3)):.2e} of the last 3 steps' movement")
    assert_same_training(a, b, checkpoint_params(ref, 3), get_preset("tiny").lr, 6)
