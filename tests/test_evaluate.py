"""`facepair eval`: real dlib landmarks and descriptors on real conversions by the session's tiny model.

The project is a copy of `trained_project` (A = the astronaut clip, B = Grace Hopper); its A clip is
converted once. An untouched copy of the original must score as the original does, a shaken copy
must show jitter, and a real conversion must return every metric, in range.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.evaluate import job as evaluate
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.media import read as media
from core.media.probe import probe
from core.media.write import write_video
from core.project.projects import load_project

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def eval_project(trained_project, tmp_path_factory):
    home = tmp_path_factory.mktemp("eval_home")
    shutil.copytree(trained_project.root, home / trained_project.name, symlinks=True)
    return load_project(home, trained_project.name)


@pytest.fixture(scope="module")
def clip_a(eval_project) -> Path:
    return Path(eval_project.sources_of("a")[0].path)


@pytest.fixture(scope="module")
def converted(eval_project, clip_a) -> Path:
    job = jobs.run_inline(eval_project, "convert", {"input": str(clip_a)})
    assert job.state == "succeeded", job.reason
    return Path(job.result["output"])


@pytest.fixture(scope="module")
def eval_job(eval_project, converted):
    job = jobs.run_inline(eval_project, "eval", {"input": str(converted), "identity_faces": 6})
    assert job.state == "succeeded", job.reason
    return job


def _in01(x) -> bool:
    return x is not None and 0.0 <= x <= 1.0


def test_eval_of_a_conversion_returns_every_metric_in_range(eval_job, converted, clip_a):
    r = eval_job.result
    assert r["input"] == str(converted) and r["original"] == str(clip_a) and r["convert_job"]
    assert r["frames"] == probe(clip_a).frames and r["faces"] == r["frames"]  # one face a frame
    i = r["identity"]
    assert i["threshold"] == 0.6 and i["faces"] == 6
    for k in ("b_share", "a_share", "input_a_share", "input_b_share", "detected_share"):
        assert _in01(i[k]), k
    assert i["input_a_share"] == 1.0 and i["input_b_share"] == 0.0  # the original is A, not B
    assert 0 < i["b_distance"] < 2 and 0 < i["a_distance"] < 2
    e, t = r["expression"], r["temporal"]
    assert e["faces"] == r["faces"] and 0 <= e["median"] <= e["p90"] and 0 < e["mean"] < 100
    # A track's mean residual minimises the distances to it: neither part exceeds the whole error.
    assert 0 <= e["tracking_error"] <= e["mean"] + 1e-9 and 0 <= e["offset"] <= e["mean"] + 1e-9, e
    assert t["triples"] == r["faces"] - 2
    assert t["jitter_output"] > 0 and t["jitter_input"] > 0
    assert math.isclose(t["ratio"], t["jitter_output"] / t["jitter_input"])
    for side in ("a", "b"):
        x = r["reconstruction"][side]
        assert x["faces"] >= 1, side  # 32 faces a side: ~10 % held out
        assert -1 <= x["ssim"] <= 1 and -1 <= x["train_ssim"] <= 1
        assert 0 < x["psnr_db"] < 100 and 0 < x["train_psnr_db"] < 100
    summary = [e for e in read_events(eval_job.events_path) if e["type"] == "summary"]
    assert summary and summary[-1]["identity"] == i
    assert t["pairs"] == r["faces"] - 1 and t["motion_output"] > 0 and t["motion_input"] > 0
    p, d, sm = r["pose"], r["detail"], r["seam"]
    assert p["faces"] == r["faces"]
    for k in ("yaw", "pitch", "roll"):
        assert 0 <= p[f"{k}_error"] < 90, p
        # A track's median minimises the mean absolute deviation: removing the offset never adds error.
        assert 0 <= p[f"{k}_tracking_error"] <= p[f"{k}_error"] + 1e-9 and abs(p[f"{k}_offset"]) < 90, p
    assert d["faces"] == r["faces"] and d["model_resolution"] == r["model"]["resolution"]
    for z in ("64", "128"):
        assert d[z]["ratio"] > 0 and d[z]["input"] > 0 and 0 < d[z]["ceiling"] < 1.5, d
    assert d["128"]["ceiling"] < d["64"]["ceiling"]  # a small model has no 128 px detail
    assert sm["faces"] == r["faces"] and sm["delta_e_output"] >= 0 and sm["delta_e_input"] >= 0
    assert math.isclose(sm["excess"], sm["delta_e_output"] - sm["delta_e_input"])
    assert r["control"] is None
    rows = evaluate.table_rows(r)
    assert {s for s, _, _ in rows} == {"identity", "expression", "temporal", "pose", "detail", "seam",
                                       "reconstruction"}
    assert all(v and "–" not in v for _, _, v in rows)  # every metric has a value


def test_an_untouched_copy_scores_exactly_as_the_original(eval_project, clip_a, tmp_path, eval_job):
    copy = tmp_path / "copy.mp4"
    shutil.copy(clip_a, copy)
    r = evaluate.evaluate(eval_project, str(copy), original=str(clip_a), identity_faces=4)
    i, e, t = r["identity"], r["expression"], r["temporal"]
    assert i["a_share"] == i["input_a_share"] == 1.0 and i["b_share"] == i["input_b_share"] == 0.0
    assert i["detected_share"] == 1.0
    assert e["mean"] < 1e-6 and e["offset"] < 1e-6 and e["tracking_error"] < 1e-6
    assert t["jitter_output"] == t["jitter_input"] and t["ratio"] == 1.0 and t["motion_ratio"] == 1.0
    p, d, sm = r["pose"], r["detail"], r["seam"]
    assert p["yaw_error"] == p["pitch_error"] == p["roll_error"] == 0.0
    assert p["pitch_offset"] == p["pitch_tracking_error"] == 0.0
    assert d["64"]["ratio"] == d["128"]["ratio"] == 1.0
    assert sm["excess"] == 0.0 and sm["delta_e_output"] == sm["delta_e_input"]
    # The model's reconstruction does not depend on the video.
    assert r["reconstruction"] == eval_job.result["reconstruction"]


def test_a_shaken_copy_shows_jitter_but_keeps_the_expression(eval_project, clip_a, tmp_path):
    rng = np.random.default_rng(0)
    frames = []
    for f in media.iter_frames(clip_a):
        dx, dy = rng.uniform(-4, 4, 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        frames.append(cv2.warpAffine(f.image, m, (f.image.shape[1], f.image.shape[0]), borderMode=cv2.BORDER_REFLECT))
    shaken = write_video(tmp_path / "shaken.mp4", frames, 24.0)
    r = evaluate.evaluate(eval_project, str(shaken), original=str(clip_a), identity_faces=2)
    assert r["temporal"]["ratio"] > 2, r["temporal"]
    assert r["expression"]["median"] < 5, r["expression"]  # a shift is taken out by the similarity fit
    assert r["identity"]["a_share"] == 1.0


def test_which_videos_are_compared(eval_project, converted, clip_a, tmp_path):
    # The original given as --input: its newest conversion is measured.
    pair = evaluate.find_pair(eval_project, str(clip_a))
    assert (pair.converted, pair.original, pair.swap) == (converted, clip_a.resolve(), "a-to-b")
    with pytest.raises(evaluate.EvalError, match="no such file"):
        evaluate.find_pair(eval_project, str(tmp_path / "missing.mp4"))
    stray = tmp_path / "stray.mp4"
    shutil.copy(converted, stray)
    with pytest.raises(evaluate.EvalError, match="--original"):
        evaluate.find_pair(eval_project, str(stray))
    with pytest.raises(evaluate.EvalError, match="its own original"):
        evaluate.find_pair(eval_project, str(stray), original=str(stray))
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(evaluate.EvalError, match="not a video"):
        evaluate.find_pair(eval_project, str(image), original=str(clip_a))


def test_cli_json_and_errors(eval_project, converted, eval_job, tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    base = [sys.executable, "-m", "tui.cli.main", "--home", str(eval_project.home), "eval", eval_project.name]
    r = subprocess.run([*base, "--input", str(converted), "--identity-faces", "2", "--json"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert set(out) == set(eval_job.result)
    assert out["identity"]["faces"] == 2
    # Another process runs the same model: equal up to float noise (XLA's CPU threads may sum in
    # another order), not bit for bit.
    for side, x in eval_job.result["reconstruction"].items():
        assert out["reconstruction"][side] == {k: pytest.approx(v, rel=1e-5) if isinstance(v, float) else v
                                               for k, v in x.items()}, side
    r = subprocess.run([*base, "--input", str(converted), "--identity-faces", "1"], cwd=ROOT,
                       env=dict(env, COLUMNS="200"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    for words in ("pose", "yaw / pitch / roll error", "detail", "at 64 px", "at 128 px", "seam", "ΔE"):
        assert words in r.stdout, (words, r.stdout[-3000:])
    r = subprocess.run([*base, "--input", str(tmp_path / "nope.mp4")], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_a_self_swap_control_is_measured_on_the_same_frames(eval_project, converted, clip_a):
    job = jobs.run_inline(eval_project, "convert", {"input": str(clip_a), "swap": "a-to-a"})
    assert job.state == "succeeded", job.reason
    control = Path(job.result["output"])
    assert control != converted and "a-to-a" in control.name
    r = evaluate.evaluate(eval_project, str(converted), identity_faces=2, control=str(control))
    c = r["control"]
    assert c["video"] == str(control) and c["faces"] == r["faces"]
    assert 0 < c["ssim"] <= 1 and c["detail"]["64"] > 0 and c["detail"]["128"] > 0
    assert all(0 <= c["pose"][f"{k}_error"] < 90 for k in ("yaw", "pitch", "roll")), c["pose"]
    # The original as its own control: SSIM 1, detail ratio 1, the same pose.
    same = evaluate.evaluate(eval_project, str(converted), identity_faces=2, control=str(clip_a))["control"]
    assert same["ssim"] == 1.0 and same["detail"]["64"] == 1.0
    assert same["pose"] == {"yaw_error": 0.0, "pitch_error": 0.0, "roll_error": 0.0}
    assert same["expression"] < 1e-6 and 0 < c["expression"] < 100
    assert {s for s, _, _ in evaluate.table_rows(r)} >= {"control"}


def _face_track(frames: int = 12):
    """The mean face (68 points, a dlib-like jaw) moving, turning and scaling, its mouth opening."""
    from core.faces.align import MEAN_FACE

    base = np.zeros((68, 2))
    base[17:] = MEAN_FACE * 200
    base[:17] = np.stack([np.linspace(0, 200, 17), np.full(17, 230.0)], axis=1)
    track = []
    for t in range(frames):
        lm = base.copy()
        lm[48:68, 1] += 12 * np.sin(t / 2) * np.sign(lm[48:68, 1] - lm[48:68, 1].mean())  # the mouth moves
        a = math.radians(3 * t)
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        track.append(lm @ rot.T * (1 + 0.02 * t) + np.array([5.0 * t, -2.0 * t]))
    return track


def test_another_face_that_follows_the_expression_has_an_offset_and_no_tracking_error():
    """B's proportions (eyes set wider, the same mouth motion) in every frame: all offset."""
    original = _face_track()
    wider = []
    for lm in original:
        c = lm.copy()
        eyes = lm[42:48].mean(0) - lm[36:42].mean(0)
        c[36:42] -= 0.08 * eyes
        c[42:48] += 0.08 * eyes
        wider.append(c)
    res = {0: [evaluate.expression_residual(o, w) for o, w in zip(original, wider, strict=True)]}
    offset, tracking = evaluate.expression_offset_and_tracking(res)
    errors = [evaluate.expression_error(o, w) for o, w in zip(original, wider, strict=True)]
    assert tracking < 0.05 * offset, (offset, tracking)
    assert math.isclose(offset, float(np.mean(errors)), rel_tol=0.05), (offset, np.mean(errors))
    for o, w, e in zip(original, wider, errors, strict=True):  # the residual's mean length is the error
        assert math.isclose(float(np.linalg.norm(evaluate.expression_residual(o, w), axis=1).mean()), e,
                            rel_tol=1e-9, abs_tol=1e-9)


def test_a_frozen_mouth_is_a_tracking_error():
    original = _face_track()
    frozen = [np.concatenate([o[:48], original[0][48:] - original[0][48:].mean(0) + o[48:].mean(0)])
              for o in original]
    res = {0: [evaluate.expression_residual(o, f) for o, f in zip(original, frozen, strict=True)]}
    offset, tracking = evaluate.expression_offset_and_tracking(res)
    assert tracking > 0.5, (offset, tracking)
    assert evaluate.expression_offset_and_tracking({}) == (None, None)
