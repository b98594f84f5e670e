"""The demo end to end, as `make demo` runs it (the CLI, detached stage jobs), with the `tiny` preset,
a few steps and short clips: two public-domain stills → clips → extract → train → convert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.demo import job as demo
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.media import label
from core.media import read as media
from core.media.probe import describe
from core.project.projects import create_project, load_project

ROOT = Path(__file__).resolve().parent.parent
FRAMES, TARGET_FRAMES, STEPS = 16, 12, 4
DEMO_ARGS = ["--preset", "tiny", "--steps", str(STEPS), "--frames", str(FRAMES), "--target-frames",
             str(TARGET_FRAMES), "--batch", "4"]


def _facepair(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "tui.cli.main", "--home", str(home), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`facepair demo --json` once in a fresh home: (home, result)."""
    home = tmp_path_factory.mktemp("demo_home")
    r = _facepair(home, "demo", *DEMO_ARGS, "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    return home, json.loads(r.stdout)


def test_demo_builds_the_sample_project_with_its_consent_record(demo_run):
    home, result = demo_run
    project = load_project(home, "demo")
    assert (project.label_a, project.label_b) == (demo.LABEL_A, demo.LABEL_B)
    assert "public-domain" in project.consent.statement.lower() or "public domain" in project.consent.statement
    assert "not real footage" in project.consent.statement
    assert result["project"] == "demo" and result["home"] == str(home)


def test_each_stage_is_its_own_job_and_extraction_finds_both_faces(demo_run):
    home, result = demo_run
    project = load_project(home, "demo")
    by_kind = {j.kind: j for j in jobs.project_jobs(project)}
    assert {"demo", "extract", "train", "convert"} <= set(by_kind)
    for kind in ("demo", "extract", "train", "convert"):
        assert by_kind[kind].state == "succeeded", (kind, by_kind[kind].reason)
        assert result["jobs"].get(kind, by_kind[kind].id) == by_kind[kind].id
    # A face in (nearly) every frame of both clips.
    assert result["faces"]["a"] >= FRAMES - 1 and result["faces"]["b"] >= FRAMES - 1
    assert project.face_count("a") == result["faces"]["a"]
    # The demo job passed on every stage's progress, so the TUI watching it sees the whole run.
    stages = {str(e.get("stage", "")).split(":")[0] for e in read_events(by_kind["demo"].events_path)
              if e["type"] == "progress"}
    assert {"1/4 clips", "2/4 extract", "3/4 train", "4/4 convert"} <= stages
    assert set(result["seconds"]) == {"clips", "extract", "train", "convert"}
    assert all(v > 0 for v in result["seconds"].values())


def test_training_writes_a_checkpoint_and_reports_losses(demo_run):
    home, result = demo_run
    project = load_project(home, "demo")
    steps = [p for p in (project.model_dir / "checkpoints").iterdir() if p.name.isdigit()]
    assert steps and max(int(p.name) for p in steps) == STEPS
    m = result["model"]
    assert m["preset"] == "tiny" and m["step"] == STEPS and m["steps_trained"] == STEPS
    assert all(np.isfinite(m[k]) and m[k] > 0 for k in ("loss_a", "loss_b"))
    assert json.loads((project.model_dir / "holdout.json").read_text())["a"] is not None
    # The demo's model: the preset's architecture with the demo's lighter augmentation, kept by training.
    step, meta = demo.model_preset(project)
    assert step == STEPS and meta["preset"] == "tiny"
    assert meta["preset_config"]["augment"] == {**meta["preset_config"]["augment"], **demo.DEMO_AUGMENT}
    assert meta["preset_config"]["encoder_channels"] == list(demo.demo_preset("tiny").encoder_channels)


def test_conversion_writes_a_labelled_video_with_audio(demo_run):
    home, result = demo_run
    out = Path(result["output"])
    assert out.is_file() and out.parent == home / "demo" / "output"
    d = describe(out)
    assert [s["kind"] for s in d["streams"]] == ["video", "audio"]
    assert d["frames"] == TARGET_FRAMES
    assert label.VISIBLE_TEXT in d["metadata"].get("comment", "")
    c = result["convert"]
    assert c["faces_swapped"] >= TARGET_FRAMES - 1 and c["visible_label"] and c["metadata_label"]
    # The visible mark is burned in: its corner differs from the target clip, and the face was replaced.
    src = [f.image for f in media.iter_frames(result["target"])]
    dst = [f.image for f in media.iter_frames(out)]
    x0, y0, x1, y1 = label.label_box(src[0].shape)
    diff = np.abs(src[5].astype(int) - dst[5].astype(int))
    assert diff[y0:y1, x0:x1].mean() > 20
    h, w = src[0].shape[:2]
    assert diff[h // 4: 3 * h // 4, w // 3: 2 * w // 3].mean() > 5  # the face, in the middle of the frame
    # The side-by-side frame for the README: original | converted, with the metadata label.
    frame = Path(result["frame"])
    img = media.read_image(frame)
    assert img.shape[1] == 2 * w + 4 and img.shape[0] == h
    from PIL import Image

    assert label.VISIBLE_TEXT in Image.open(frame).text.get("Comment", "")


def test_the_cli_summary_and_a_second_run_resume(demo_run):
    home, first = demo_run
    project = load_project(home, "demo")
    clip = demo.clip_paths(project)["a"]
    mtime = clip.stat().st_mtime_ns
    step0 = json.loads((project.model_dir / "status.json").read_text())["step"]
    r = _facepair(home, "demo", *DEMO_ARGS[:2], "--steps", "2", *DEMO_ARGS[4:])
    assert r.returncode == 0, r.stderr[-3000:]
    text = " ".join(r.stdout.split())
    assert "reusing the demo project 'demo'" in text and "--fresh" in text
    assert "demo finished" in text and "output" in text and f"step {step0 + 2}" in text
    assert f"--home {home}" in text  # how to open the TUI on this home
    assert "not real footage" in text
    assert clip.stat().st_mtime_ns == mtime  # clips reused
    status = json.loads((project.model_dir / "status.json").read_text())
    assert status["step"] == step0 + 2  # resumed from the checkpoint, trained 2 more


def test_prepare_refuses_a_project_the_demo_did_not_make(home):
    create_project(home, "demo", "X", "Y", "X and Y agreed to this test.")
    with pytest.raises(demo.DemoError, match="not made by the demo"):
        demo.prepare(home)
    r = _facepair(home, "demo", "--steps", "1")
    assert r.returncode == 2 and "not made by the demo" in r.stderr and "Traceback" not in r.stderr
    assert not (home / "demo" / demo.MARKER).exists()


def test_fresh_rebuilds_and_a_running_job_is_not_disturbed(home):
    project, note = demo.prepare(home)
    assert "created" in note and (project.root / demo.MARKER).is_file()
    (project.output_dir / "old.mp4").write_bytes(b"x")
    project, note = demo.prepare(home)
    assert "reusing" in note and (project.output_dir / "old.mp4").exists()
    project, note = demo.prepare(home, fresh=True)
    assert "--fresh" in note and not (project.output_dir / "old.mp4").exists()
    job = jobs.start_job(project, "selftest", {"seconds": 30})
    try:
        with pytest.raises(demo.DemoError, match=job.id):
            demo.prepare(home, fresh=True)
    finally:
        jobs.cancel_job(job, grace=2)
    assert load_project(home, "demo").root.is_dir()


def test_bad_budget_options_are_refused_before_any_job(home):
    for args, words in ((["--steps", "0"], "at least 1"), (["--minutes", "-1"], "more than 0"),
                        (["--steps", "3", "--minutes", "1"], "not allowed with"),
                        (["--preset", "nope"], "unknown preset")):
        r = _facepair(home, "demo", *args)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
    assert not (home / "demo").exists()


def test_without_the_sample_images_packages_it_says_what_to_install(home, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # `import skimage` fails, as on a plain install
    with pytest.raises(demo.DemoError, match="pip install scikit-image"):
        demo.prepare(home)
    assert not (home / "demo").exists()
