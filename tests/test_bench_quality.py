"""`facepair bench quality`: recipes as data, and one real run end to end on the shared talking clips
(tiny preset, a few steps, every 6th frame extracted, 8 frames converted) through the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.bench import quality as bq
from core.jobs import control as jobs
from core.project.projects import load_project
from core.train import model_io

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("identity_b", "identity_a", "expression", "expression_tracking", "expression_offset",
           "control_expression", "pose_yaw", "pose_pitch", "pose_roll",
           "pose_tracking_pitch", "pose_offset_pitch", "control_pose_pitch", "stability",
           "motion_ratio", "detail_64", "detail_128", "detail_64_ceiling", "detail_128_ceiling", "seam",
           "seam_original", "seam_excess", "control_ssim", "control_detail_64", "control_detail_128", "device")


def _facepair(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "tui.cli.main", "--home", str(home), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ---- recipes -------------------------------------------------------------------------------------

def test_the_default_recipe_is_lites_for_the_issues_budget():
    """lite for 4,600 steps, its discriminator joining at 3,600 with the random warp off, half of B's
    faces in A's colours: about 15 minutes on 2 cores."""
    from core.jaxmodels.presets import get_preset

    r = bq.Recipe().checked()
    assert (r.preset, r.steps, r.minutes, r.batch, r.seed) == ("lite", 4600, None, 16, 0)
    lite = get_preset("lite")
    assert (lite.gan_power, lite.gan_from, lite.gan_warp) == (0.1, 3600, 0.0)
    plain, late = lite.program_at(0), lite.program_at(3600)
    assert (plain.gan_power, plain.augment.warp) == (0, lite.augment.warp) and lite.augment.warp > 0
    assert (late.gan_power, late.augment.warp) == (0.1, 0.0)
    assert lite.augment.colour_transfer == 0.5
    assert bq.Recipe.from_json(r.to_json()) == r


def test_a_recipe_is_data_and_extra_train_options_pass_through():
    r = bq.Recipe.from_json({"preset": "tiny", "minutes": 2, "train": {"lr": 3e-4}})
    assert r.steps is None and r.minutes == 2 and r.train == {"lr": 3e-4}
    assert "lr=0.0003" in r.describe() and "2 min" in r.describe()
    assert bq.parse_option("lr=3e-4") == ("lr", 3e-4)
    assert bq.parse_option("stream=true") == ("stream", True)
    assert bq.parse_option("steps-per-call=4") == ("steps_per_call", 4)
    assert bq.parse_option("detector=cnn") == ("detector", "cnn")


@pytest.mark.parametrize("data, words", [
    ({"bogus": 1}, "unknown recipe keys bogus"),
    ({"train": {"nope": 1}}, "train job has no option 'nope'"),
    ({"train": {"batch": 8}}, "its own recipe field"),
    ({"train": {"save_every": 8}}, "set by the benchmark"),
    ({"convert": {"swap": "b-to-a"}}, "set by the benchmark"),
    ({"steps": 10, "minutes": 1}, "steps or for minutes"),
    ({"preset": "huge"}, "huge"),
    ({"frames": 2}, "at least 3"),
    ({"then": {"steps": 10}}, "list of resumes"),
    ({"then": [{"gan_power": 0.1}]}, "integer 'steps'"),
    ({"steps": 100, "then": [{"steps": 100}]}, "already reaches step 100"),
    ({"steps": 100, "then": [{"steps": 200}, {"steps": 150}]}, "already reaches step 200"),
    ({"minutes": 1, "then": [{"steps": 200}]}, "not minutes"),
    ({"then": [{"steps": 9000, "batch": 8}]}, "cannot set 'batch'"),
    ({"then": [{"steps": 9000, "nope": 1}]}, "cannot set 'nope'"),
    ({"start_from": "/elsewhere"}, "resumes that train on from it"),
    ({"minutes": 1, "start_from": "/elsewhere", "then": [{"steps": 9}]}, "not minutes"),
])
def test_a_bad_recipe_says_what_is_wrong(data, words):
    with pytest.raises(bq.BenchQualityError, match=words):
        bq.Recipe.from_json(data)


def test_a_recipe_resumes_the_model_with_its_own_options():
    r = bq.Recipe.from_json({"steps": 2000, "then": [{"steps": 2725, "gan_power": 0.1}]})
    assert r.stages == bq.STAGES + 1
    assert r.describe() == "lite, 2000 steps, batch 16, seed 0; then to step 2725, gan_power=0.1"
    assert bq.Recipe.from_json(r.to_json()) == r


def test_the_table_is_made_from_the_json_document():
    row = {"pair": "d18 → d19", "identity_b": 0.47, "identity_a": 0.1, "expression": 4.2,
           "expression_tracking": 3.1, "control_expression": 2.05, "pose_yaw": 1.0,
           "pose_pitch": 2.0, "pose_roll": 0.5, "pose_tracking_yaw": 0.8, "pose_tracking_pitch": 1.5,
           "pose_tracking_roll": 0.4, "control_pose_yaw": 0.3, "control_pose_pitch": 0.6, "control_pose_roll": 0.2,
           "stability": 1.3, "detail_64": 0.09, "detail_128": 0.03,
           "seam": 3.0, "seam_original": 2.5, "control_ssim": 0.81, "control_detail_64": 0.2,
           "seconds": {"extract": 40, "train": 700, "convert": 10, "control": 9, "eval": 60}, "device": "the CPU"}
    doc = {"command": "facepair bench quality", "recipe": bq.Recipe().to_json(), "started": "T", "seconds": 900,
           "machine": {"cpu": "x", "cores": 2}, "rows": [row]}
    md = bq.markdown(doc).splitlines()
    assert md[0] == "`facepair bench quality`" and "lite, 4600 steps, batch 16, seed 0" in md[2]
    assert md[4].startswith("| pair | as B | still A |") and len(md) == 7
    assert md[6] == ("| d18 → d19 | 47 % | 10 % | 4.20 | 3.10 | 1.0/2.0/0.5 | 0.8/1.5/0.4 | 1.30 | 9 % | 3 % "
                     "| 3.0 (2.5) | 0.810 / 20 % | 2.05 | 0.3/0.6/0.2 | 40 s / 11 min 40 s / 19 s / 60 s | the CPU |")


def test_a_project_the_benchmark_did_not_make_is_left_alone(home, shared_data):
    from core.project.projects import create_project

    a, b = shared_data / "talking" / "d18.mp4", shared_data / "talking" / "d19.mp4"
    create_project(home, bq.project_name(a, b), "x", "y", "someone else's project")
    with pytest.raises(bq.BenchQualityError, match="not made by the quality benchmark"):
        bq.prepare(home, a, b, bq.Recipe())


# ---- end to end ----------------------------------------------------------------------------------

def test_bench_quality_end_to_end_on_real_clips(tmp_path, shared_data, capsys):
    home = tmp_path / "home"
    a, b = shared_data / "talking" / "d18.mp4", shared_data / "talking" / "d19.mp4"
    out = tmp_path / "run.json"
    r = _facepair(home, "bench", "quality", "--pair", str(a), str(b), "--preset", "tiny", "--steps", "2", "--batch",
                  "4", "--frames", "8", "--identity-faces", "2", "--extract-opt", "every=6", "--extract-opt",
                  "size=64", "--train-opt", "lr=0.001", "--then", "4", "keep=2", "--json", "--out", str(out))
    assert r.returncode == 0, r.stderr[-4000:]
    doc = json.loads(r.stdout)
    assert json.loads(out.read_text()) == doc
    assert doc["benchmark"] == "quality" and "bench quality" in doc["command"]
    assert doc["recipe"]["train"] == {"lr": 0.001} and doc["recipe"]["extract"] == {"every": 6, "size": 64}
    assert doc["recipe"]["then"] == [{"steps": 4, "keep": 2}]
    (row,) = doc["rows"]
    for key in FIGURES:
        assert row[key] is not None, key
    for key in ("identity_b", "identity_a"):
        assert 0 <= row[key] <= 1
    assert row["frames"] == row["faces"] == 8 and row["identity_faces"] == 2
    assert row["model"] == {**row["model"], "preset": "tiny", "step": 4}
    assert set(row["seconds"]) == {"extract", "train", "train 2", "convert", "control", "eval", "total"}
    assert all(v > 0 for v in row["seconds"].values())
    # Progress of every stage reached the terminal (stderr with --json).
    for stage in ("[1/6 extract]", "[2/6 train]", "[3/6 train]", "[4/6 convert]", "[5/6 convert]", "[6/6 eval]"):
        assert stage in r.stderr, stage
    # The real stages ran as jobs of a project that says it is a benchmark.
    project = load_project(home, row["project"])
    assert "Benchmark only" in project.consent.statement
    kinds = sorted(j.kind for j in jobs.project_jobs(project))
    assert kinds == ["bench-quality", "convert", "convert", "eval", "extract", "train", "train"]
    assert all(j.state == "succeeded" for j in jobs.project_jobs(project))
    resume = next(j for j in jobs.project_jobs(project) if j.id == row["jobs"]["train 2"])
    assert (resume.args["steps"], resume.args["keep"]) == (4, 2)  # the resume ran with its own options
    # The table the command prints without --json.
    from tui.cli.commands.bench import _print_quality

    capsys.readouterr()
    _print_quality(doc)
    printed = capsys.readouterr().out
    for words in ("quality: tiny, 2 steps", "d18 → d19", "detail 64 px", "seam ΔE", "self-swap"):
        assert words in printed, (words, printed)
    # The docs table from the saved run.
    t = _facepair(home, "bench", "quality", "--from", str(out), timeout=60)
    assert t.returncode == 0 and "| d18 → d19 |" in t.stdout, t.stdout + t.stderr
    assert "Recipe: tiny, 2 steps, batch 4, seed 0, lr=0.001; then to step 4, keep=2;" in t.stdout

    # Another end of training from the same beginning: this run's model at step 2, resumed to 3.
    same = ["bench", "quality", "--pair", str(a), str(b), "--preset", "tiny", "--batch", "4", "--frames", "8",
            "--identity-faces", "2", "--extract-opt", "every=6", "--extract-opt", "size=64", "--train-opt", "lr=0.001",
            "--start-from", str(home)]
    home2 = tmp_path / "home2"
    r = _facepair(home2, *same, "--steps", "2", "--then", "3", "warp=0", "--json")
    assert r.returncode == 0, r.stderr[-4000:]
    (row2,) = json.loads(r.stdout)["rows"]
    assert row2["started_from"] == {"home": str(home.resolve()), "step": 2}
    assert row2["model"]["step"] == 3 and row2["faces_extracted"] == row["faces_extracted"]
    assert set(row2["seconds"]) == {"train 2", "convert", "control", "eval", "total"}
    for stage in ("[1/4 train]", "[2/4 convert]", "[3/4 convert]", "[4/4 eval]"):
        assert stage in r.stderr, stage
    branched = load_project(home2, row2["project"])
    assert sorted(j.kind for j in jobs.project_jobs(branched)) == ["bench-quality", "convert", "convert", "eval", "train"]
    ckpts = model_io.checkpoint_dir(branched)
    assert sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit()) == [2, 3]
    assert sorted(int(p.name) for p in model_io.checkpoint_dir(project).iterdir() if p.name.isdigit()) == [2, 4]
    bad = _facepair(tmp_path / "home3", *same, "--steps", "1", "--then", "3", timeout=120)
    assert bad.returncode != 0 and "kept its model at steps 2, 4, not at 1" in bad.stderr, bad.stderr[-2000:]
    assert "Traceback" not in bad.stderr
    recipe = bq.Recipe.from_json(json.loads(r.stdout)["recipe"])
    with pytest.raises(bq.BenchQualityError, match="trained with seed 0, this recipe with 1"):
        bq.prepare(tmp_path / "home3", a, b, dataclasses.replace(recipe, seed=1))


def test_cli_refuses_a_bad_train_option_before_anything_runs(tmp_path):
    r = _facepair(tmp_path / "home", "bench", "quality", "--train-opt", "nope=1", timeout=120)
    assert r.returncode == 2 and "train job has no option 'nope'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())


def test_then_on_the_command_line_starts_with_the_step():
    from core.errors import FacepairError
    from tui.cli.commands.bench import _resume

    assert _resume("2725", ["gan_power=0.1", "lr_dropout=0.5"]) == {"steps": 2725, "gan_power": 0.1,
                                                                    "lr_dropout": 0.5}
    with pytest.raises(FacepairError, match="the step to train to, not 'gan_power=0.1'"):
        _resume("gan_power=0.1", [])
