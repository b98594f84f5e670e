"""The bf16 compute path every GPU run takes, on the CPU ($FACEPAIR_COMPUTE_DTYPE=bfloat16): the
`tiny` preset (residual blocks, learned mask, DSSIM, eye/mouth priority) with the quality work's
crop coverage trains with finite, falling losses and fp32 master weights, resumes from its
checkpoint, streams from the host, and converts a clip."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.jobs import control as jobs
from core.project.projects import load_project
from core.train import model_io
from tests.fixtures.train import TRAIN_ARGS, job_events


def test_the_precision_follows_the_platform_unless_told():
    from core.jaxmodels.precision import compute_dtype_name

    assert compute_dtype_name("cpu") == "float32" and compute_dtype_name("gpu") == "bfloat16"


def test_an_unknown_precision_is_refused(monkeypatch):
    from core.jaxmodels.precision import compute_dtype_name

    monkeypatch.setenv("FACEPAIR_COMPUTE_DTYPE", "fp8")
    with pytest.raises(ValueError, match="use bfloat16 or float32"):
        compute_dtype_name("cpu")



@pytest.mark.slow
def test_bf16_training_on_the_cpu_trains_resumes_streams_and_converts(extracted_project, synth_clips, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("FACEPAIR_COMPUTE_DTYPE", "bfloat16")
    home = tmp_path / "home"
    shutil.copytree(extracted_project.root, home / extracted_project.name, symlinks=True)
    p = load_project(home, extracted_project.name)
    args = {**TRAIN_ARGS, "coverage": 1.6, "save_every": 60, "preview_every": 60}
    job = jobs.run_inline(p, "train", {**args, "steps": 120})
    assert job.state == "succeeded", job.reason
    said = [e["text"] for e in job_events(job, "message")]
    assert any("bf16 compute, fp32 weights" in t for t in said), said[:3]
    m = job_events(job, "metrics")
    assert all(np.isfinite(e["loss_a"]) and np.isfinite(e["loss_b"]) for e in m)
    for side in ("loss_a", "loss_b"):
        assert m[-1][side] < 0.8 * m[0][side], f"{side}: {m[0][side]:.3f} → {m[-1][side]:.3f}"

    mgr = model_io.checkpoint_manager(model_io.checkpoint_dir(p), read_only=True)
    try:
        flat = model_io.read_state(mgr, 120)
    finally:
        mgr.close()
    floats = {k: v for k, v in flat.items() if k.startswith("params.")}
    assert floats and all(v.dtype == np.float32 for v in floats.values())  # fp32 master weights

    resumed = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 126, "stream": True})
    assert resumed.state == "succeeded", resumed.reason
    assert any("resumed from the checkpoint at step 120" in e["text"] for e in job_events(resumed, "message"))
    assert all(np.isfinite(e["loss_a"]) for e in job_events(resumed, "metrics"))

    out = tmp_path / "bf16.mp4"
    conv = jobs.run_inline(p, "convert", {"input": str(synth_clips["astronaut"]), "output": str(out),
                                          "end": 0.5, "faces": "all"})
    assert conv.state == "succeeded", conv.reason
    assert out.is_file() and conv.result["frames"] > 0 and conv.result["faces_swapped"] > 0
