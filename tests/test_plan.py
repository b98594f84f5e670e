"""`facepair plan`: the real step compiled, not run; byte counts that must equal the model's, FLOPs
that scale with the batch, a fit against a stated memory, and a CLI (with --batch auto) without dlib
or Textual. benchmarks/gpu.sh: tests/test_plan_gpu.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.train import plan as planner

ROOT = Path(__file__).resolve().parents[1]
# Tests that compile the same plans run in one xdist group, one after another, so the later ones
# find the earlier ones' programs in the session's compile cache (tests/fixtures/train.py).
TINY_FP32_PLANS = pytest.mark.xdist_group("tiny-fp32-plans")  # tiny's step at REF_FACES, 4 and 8 in fp32
TINY_BF16_PLANS = pytest.mark.xdist_group("tiny-bf16-plans")  # `--batch auto` of tiny in bf16: 4, 8, 16


def test_memory_sizes_are_read_as_cards_are_sold():
    assert planner.parse_memory("80GB") == 80 * 2**30 == planner.parse_memory("80 GiB")
    assert planner.parse_memory("24g") == 24 * 2**30 and planner.parse_memory("512MB") == 512 * 2**20
    with pytest.raises(ValueError, match="80GB"):
        planner.parse_memory("eighty")


@pytest.mark.slow
@TINY_FP32_PLANS
def test_a_plan_counts_the_model_and_scales_with_the_batch():
    from core.jaxmodels.presets import get_preset

    tiny = get_preset("tiny")
    faces = planner.REF_FACES  # the programs `--batch auto` compiles (test_batch_auto)
    small = planner.plan("tiny", 4, faces=faces, dtype="float32", memory=2**30)
    assert small["params_bytes"] == 4 * tiny.param_count  # fp32 master weights
    assert 2 * small["params_bytes"] <= small["optimizer_bytes"] <= 2 * small["params_bytes"] + 64  # Adam's mu, nu
    r = tiny.resolution
    assert small["faces_bytes"] == 2 * faces * r * r * (3 + planner.MAP_CHANNELS)
    assert small["total_bytes"] >= small["params_bytes"] + small["optimizer_bytes"] + small["faces_bytes"]
    assert small["fits"] is True and small["flops_per_step"] > 0
    big = planner.plan("tiny", 8, faces=faces, dtype="float32")
    assert 1.7 < big["flops_per_step"] / small["flops_per_step"] < 2.1  # the step is the batch's convolutions
    assert big["temp_bytes"] > small["temp_bytes"] and "fits" not in big
    assert "| tiny (32 px, float32) | 8 |" in planner.markdown([small, big])


HIDDEN = ("dlib", "textual")  # absent on the GPU box: importing them must fail there and here


def _hide(tmp_path: Path) -> str:
    """A folder that shadows dlib and Textual with modules whose import fails, for PYTHONPATH."""
    d = tmp_path / "hidden"
    for name in HIDDEN:
        (d / name).mkdir(parents=True)
        (d / name / "__init__.py").write_text(f"raise ImportError('{name} is hidden by the test')\n")
    return f"{d}:{ROOT}"


@pytest.mark.slow
@TINY_BF16_PLANS
def test_the_cli_plans_and_picks_a_batch_without_dlib_or_textual(tmp_path):
    import os

    code = ("import sys, json; from tui.cli.main import main; rc = main(sys.argv[1:]); "
            "print(json.dumps({'mods': sorted(m for m in sys.modules if m.split('.')[0] in ('dlib', 'textual') "
            "and sys.modules[m])}), file=sys.stderr); sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": _hide(tmp_path), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code, "plan", "--preset", "tiny", "--batch", "auto",
                           "--faces", str(planner.REF_FACES), "--memory", "16MB", "--json"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    (picked,) = out["rows"]
    (auto,) = out["auto"]
    assert picked["preset"] == "tiny" and picked["dtype"] == "bfloat16" and picked["memory_bytes"] == 16 * 2**20
    batch, plans = auto["batch"], {int(b): t for b, t in auto["plans"].items()}
    assert picked["batch"] == batch == 8 and picked["fits"] is True  # the plan of the batch auto picked
    assert plans[batch] <= 0.9 * 16 * 2**20 < plans[2 * batch]  # and the next one up does not fit
    assert auto["why"].startswith(f"batch auto: {batch} (plan ")
    assert "datasheet" in out["peak_source"]
    assert json.loads(done.stderr.strip().splitlines()[-1])["mods"] == []


def test_a_named_project_plans_for_its_own_face_count(project, home):
    """`facepair plan NAME`: the faces on the device are the project's (mean of A and B), counted from
    the crop files without decoding them; hidden and non-PNG files are no faces."""
    import argparse

    from tui.cli.commands.plan import project_faces

    for side, n in (("a", 5), ("b", 8)):
        d = project.faces_dir(side)
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (d / f"{i:04d}.png").write_bytes(b"")
        (d / ".partial.png").write_bytes(b"")
        (d / "notes.txt").write_text("x")
    args = argparse.Namespace(name=project.name, home=str(home))
    assert project_faces(args) == 7  # (5 + 8) / 2, rounded up: the same bytes as 5 and 8
    assert project_faces(argparse.Namespace(name=None, home=str(home))) is None
