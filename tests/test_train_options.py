"""`facepair train`'s model options (issue 15's levers): the crop coverage — training on the centre of
the extracted crops, the checkpoint keeping it, a resume refusing another, conversion framing faces
the same way — and the loss (DSSIM, face weighting, eye/mouth priority), which a resume may change."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.faces import align
from core.faces import alignments as store
from core.faces.faceset import FaceSetError, central_box, load_faceset
from core.jobs import control as jobs
from core.jobs.events import read_events
from core.train import model_io
from tests.fixtures.extract import EXTRACTED_SIZE
from tests.fixtures.train import TRAIN_ARGS


def test_central_box_frames_the_asked_coverage_in_whole_pixels():
    assert central_box(256, 2.0, 2.0) == (0, 256)
    assert central_box(256, 2.0, 1.6) == (26, 204)  # 204.8 px rounds to a centred 204
    assert central_box(64, 2.0, 1.0) == (16, 32)
    with pytest.raises(FaceSetError, match="not inside the extracted crops"):
        central_box(256, 2.0, 2.5)
    with pytest.raises(FaceSetError, match="too few"):
        central_box(64, 2.0, 0.1)


def test_a_tighter_faceset_is_the_crop_a_tighter_alignment_would_make(extracted_project):
    """Landmarks of the sub-cropped faces equal those of a crop made straight from the frame at the
    faceset's coverage (what conversion does): the two framings agree to float rounding."""
    full = load_faceset(extracted_project, "a")
    tight = load_faceset(extracted_project, "a", coverage=1.5)
    offset, kept = central_box(EXTRACTED_SIZE, align.COVERAGE, 1.5)
    assert full.coverage == align.COVERAGE and tight.size == kept
    assert tight.coverage == pytest.approx(align.COVERAGE * kept / EXTRACTED_SIZE, rel=1e-12)
    assert tight.names == full.names
    np.testing.assert_array_equal(tight.images[0], full.images[0][offset:offset + kept, offset:offset + kept])

    sid, frame, face = store.parse_crop_name(tight.names[0])
    a = store.load_for_source(extracted_project, sid)
    lm_frame = a.landmarks[a.row(frame, face)]
    direct = align.crop_landmarks(lm_frame, align.crop_matrix(lm_frame, kept, tight.coverage, align.CENTER))
    np.testing.assert_allclose(tight.landmarks[0], direct, atol=1e-3)
    resized = load_faceset(extracted_project, "a", size=32, coverage=1.5)
    assert resized.images.shape[1:] == (32, 32, 3) and resized.coverage == tight.coverage


def _preset_config(project) -> dict:
    """The preset the newest checkpoint records."""
    m = model_io.checkpoint_manager(model_io.checkpoint_dir(project), read_only=True)
    try:
        return model_io.read_meta(m, m.latest_step())["preset_config"]
    finally:
        m.close()


@pytest.mark.slow
def test_a_model_trained_tighter_keeps_its_coverage_through_resume_and_conversion(extracted_project_copy):
    from core.convert.converter import make_converter
    from core.convert.merge import MergeOptions

    p = extracted_project_copy
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 3, "coverage": 1.6})
    assert job.state == "succeeded", job.reason
    expected = align.COVERAGE * central_box(EXTRACTED_SIZE, align.COVERAGE, 1.6)[1] / EXTRACTED_SIZE
    assert _preset_config(p)["coverage"] == pytest.approx(expected, rel=1e-12)
    assert json.loads((p.model_dir / "config.json").read_text())["coverage"] == pytest.approx(expected)
    said = [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]
    assert any(f"coverage 1.6 is {expected:.4g}" in t for t in said)

    refused = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 6, "coverage": 2.0})
    assert refused.state == "failed" and "cannot continue at --coverage 2" in refused.reason

    resumed = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 6})  # no --coverage: the model's own
    assert resumed.state == "succeeded", resumed.reason
    assert _preset_config(p)["coverage"] == pytest.approx(expected, rel=1e-12)

    swapper = model_io.load_swapper(p)
    assert swapper.coverage == pytest.approx(expected, rel=1e-12)
    converter = make_converter(p, "a-to-b", MergeOptions(), "all", True, swapper=swapper)
    assert converter.coverage == pytest.approx(expected, rel=1e-12)


def test_a_model_of_the_crops_own_coverage_converts_at_the_extraction_coverage(trained_project):
    from core.convert.converter import make_converter
    from core.convert.merge import MergeOptions

    swapper = model_io.load_swapper(trained_project)
    assert swapper.coverage is None
    converter = make_converter(trained_project, "a-to-b", MergeOptions(), "all", True, swapper=swapper)
    assert converter.coverage == align.COVERAGE


@pytest.mark.slow
def test_a_resume_may_change_the_loss_and_the_checkpoint_records_it(trained_project, tmp_path):
    import shutil

    from core.project.projects import load_project

    home = tmp_path / "home"
    shutil.copytree(trained_project.root, home / trained_project.name, symlinks=True)
    p = load_project(home, trained_project.name)
    before = _preset_config(p)["loss"]
    assert before["dssim"] == 0.5 and before["mask_weighted"] and before["eye_multiplier"] == 2.0  # tiny's
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 9, "dssim": 0.0, "face_weighted": False,
                                       "eye_priority": 3.0})
    assert job.state == "succeeded", job.reason
    said = [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]
    assert any(t.startswith("loss: ") and "dssim 0.5 → 0.0" in t and "mask_weighted True → False" in t for t in said)
    after = _preset_config(p)["loss"]
    assert (after["dssim"], after["mask_weighted"], after["eye_multiplier"]) == (0.0, False, 3.0)
    assert after["mouth_multiplier"] == before["mouth_multiplier"]  # not asked: kept
    metrics = [e for e in read_events(job.events_path) if e["type"] == "metrics"]
    assert metrics and all(np.isfinite(e["loss_a"]) and np.isfinite(e["loss_b"]) for e in metrics)


@pytest.mark.slow
def test_colour_transfer_and_warp_train_resume_and_are_recorded(trained_project, tmp_path):
    """`--colour-transfer P` and `--warp W` (issue 15's colour and warp levers): a resume with them
    trains finite steps, says the change, and the checkpoint records it; a later resume without the
    flags keeps them."""
    import shutil

    from core.project.projects import load_project

    home = tmp_path / "home"
    shutil.copytree(trained_project.root, home / trained_project.name, symlinks=True)
    p = load_project(home, trained_project.name)
    before = _preset_config(p)["augment"]
    assert before["colour_transfer"] == 0.0 and before["warp"] > 0  # colour transfer off, the warp on
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 9, "colour_transfer": 0.5, "warp": 0.0})
    assert job.state == "succeeded", job.reason
    said = [e["text"] for e in read_events(job.events_path) if e["type"] == "message"]
    assert any(t.startswith("augment: ") and "colour_transfer 0.0 → 0.5" in t for t in said), said
    assert any(t.startswith("augment: ") and f"warp {before['warp']} → 0.0" in t for t in said), said
    assert _preset_config(p)["augment"]["colour_transfer"] == 0.5 and _preset_config(p)["augment"]["warp"] == 0.0
    metrics = [e for e in read_events(job.events_path) if e["type"] == "metrics"]
    assert metrics and all(np.isfinite(e["loss_a"]) and np.isfinite(e["loss_b"]) for e in metrics)
    job = jobs.run_inline(p, "train", {**TRAIN_ARGS, "steps": 10})
    assert job.state == "succeeded", job.reason
    assert _preset_config(p)["augment"]["colour_transfer"] == 0.5 and _preset_config(p)["augment"]["warp"] == 0.0


def test_colour_transfer_out_of_range_is_refused():
    from core.jobs import kinds
    from core.jobs.spec import OptionError

    with pytest.raises(OptionError, match="--colour-transfer 1.5 is out of range"):
        kinds.check_args("train", {"colour_transfer": 1.5})
    assert kinds.check_args("train", {"colour_transfer": 0.25})["colour_transfer"] == 0.25
    with pytest.raises(OptionError, match="--warp 0.5 is out of range"):
        kinds.check_args("train", {"warp": 0.5})
