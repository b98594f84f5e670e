"""`facepair plan`: the real step compiled, not run; byte counts that must equal the model's, FLOPs
that scale with the batch, a fit against a stated memory, and a CLI without dlib or Textual."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.train import plan as planner

ROOT = Path(__file__).resolve().parents[1]


def test_memory_sizes_are_read_as_cards_are_sold():
    assert planner.parse_memory("80GB") == 80 * 2**30 == planner.parse_memory("80 GiB")
    assert planner.parse_memory("24g") == 24 * 2**30 and planner.parse_memory("512MB") == 512 * 2**20
    with pytest.raises(ValueError, match="80GB"):
        planner.parse_memory("eighty")


@pytest.mark.slow
def test_a_plan_counts_the_model_and_scales_with_the_batch():
    from core.jaxmodels.presets import get_preset

    tiny = get_preset("tiny")
    small = planner.plan("tiny", 4, faces=16, dtype="float32", memory=2**30)
    assert small["params_bytes"] == 4 * tiny.param_count  # fp32 master weights
    assert 2 * small["params_bytes"] <= small["optimizer_bytes"] <= 2 * small["params_bytes"] + 64  # Adam's mu, nu
    r = tiny.resolution
    assert small["faces_bytes"] == 2 * 16 * r * r * (3 + planner.MAP_CHANNELS)
    assert small["total_bytes"] >= small["params_bytes"] + small["optimizer_bytes"] + small["faces_bytes"]
    assert small["fits"] is True and small["flops_per_step"] > 0
    big = planner.plan("tiny", 8, faces=16, dtype="float32")
    assert 1.7 < big["flops_per_step"] / small["flops_per_step"] < 2.1  # the step is the batch's convolutions
    assert big["temp_bytes"] > small["temp_bytes"] and "fits" not in big
    assert "| tiny (32 px, float32) | 8 |" in planner.markdown([small, big])


@pytest.mark.slow
def test_the_cli_plans_without_dlib_or_textual_and_says_what_does_not_fit():
    code = ("import sys, json; from tui.cli.main import main; rc = main(sys.argv[1:]); "
            "print(json.dumps({'mods': sorted(m for m in sys.modules if m.split('.')[0] in ('dlib', 'textual'))}), "
            "file=sys.stderr); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "plan", "--preset", "tiny", "--batch", "4", "--faces", "8",
                           "--memory", "5MB", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    (row,) = out["rows"]
    assert row["preset"] == "tiny" and row["batch"] == 4 and row["dtype"] == "bfloat16"
    assert row["fits"] is False and row["memory_bytes"] == 5 * 2**20
    assert "datasheet" in out["peak_source"]
    assert json.loads(done.stderr.strip().splitlines()[-1])["mods"] == []


@pytest.mark.slow
def test_the_gpu_script_runs_its_smoke_recipe(tmp_path):
    """benchmarks/gpu.sh is what a session with a GPU runs once: a broken import there wastes it."""
    import os

    env = {**os.environ, "OUT": str(tmp_path), "PRESETS": "tiny", "BATCH": "4", "STEPS": "2", "REPEATS": "1",
           "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    bench = json.loads((tmp_path / "bench_gpu.json").read_text())
    (row,) = bench["train"]
    assert row["preset"] == "tiny" and row["images_per_s"] > 0
    (plan,) = json.loads((tmp_path / "plan_gpu.json").read_text())
    assert plan["preset"] == "tiny" and plan["batch"] == 4 and plan["total_bytes"] > 0
