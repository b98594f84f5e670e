"""benchmarks/gpu.sh, the one GPU check, on its CPU smoke recipe with dlib and Textual hidden (as on
the GPU box): batch auto for a stand-in device, the bench, the plan beside it, the conversion part."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.test_plan import ROOT, TINY_BF16_PLANS, _hide


@pytest.mark.slow
@TINY_BF16_PLANS
def test_the_gpu_script_runs_its_smoke_recipe_without_dlib_or_textual(tmp_path):
    """benchmarks/gpu.sh is what a session with a GPU runs once: a broken import there wastes it.
    Here with a stand-in 28 MiB device, so `--batch auto` searches (tiny: 8 fits, 16 does not)."""
    import os

    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PRESETS": "tiny", "MEMORY": "28MB", "STEPS": "2", "REPEATS": "1",
           "CONVERT": "tiny", "PYTHON": sys.executable, "PYTHONPATH": _hide(tmp_path), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    row = json.loads((out / "train_tiny.json").read_text())
    assert row["preset"] == "tiny" and row["images_per_s"] > 0 and row["batch"] == 8
    assert row["batch_choice"].startswith("batch auto: 8 (plan ") and "16 would need" in row["batch_choice"]
    assert row["plan"]["total_bytes"] > row["plan"]["params_bytes"] > 0
    conv = json.loads((out / "convert_tiny.json").read_text())
    assert conv["kind"].startswith("swap only") and conv["faces_per_s"] > 0  # dlib hidden: the swap stage
    text = (out / "bench_gpu.txt").read_text()
    assert "| tiny | 8 (batch auto: 8" in text and text.rstrip().splitlines()[-1].startswith("total ")
