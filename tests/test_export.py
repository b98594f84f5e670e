"""`facepair export`: ONNX and DeepFaceLive .dfm files from a trained model, checked with ONNX Runtime
against the JAX swapper that conversion uses, on the project's real aligned faces."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("jax2onnx")

from core.export import crop, graph, job, onnx_file, verify  # noqa: E402


@pytest.fixture(scope="module")
def project(trained_project, tmp_path_factory):
    """A writable copy of the trained tiny project (exports are written into it)."""
    from core.project.projects import load_project

    home = tmp_path_factory.mktemp("export_home")
    shutil.copytree(trained_project.root, home / trained_project.name, symlinks=True)
    return load_project(home, trained_project.name)


@pytest.fixture(scope="module")
def faces_a(project):
    """Eight of side A's real aligned faces at the model's crop, uint8 RGB."""
    from core.faces.faceset import load_faceset
    from core.train.model_io import load_swapper

    sw = load_swapper(project)
    return load_faceset(project, "a", size=sw.resolution, limit=8, coverage=sw.coverage).images


def _jax_swap(project, faces, direction):
    from core.train.model_io import load_swapper

    return load_swapper(project).swap(faces, direction)


def test_dfm_keeps_deepfacelives_contract_and_matches_the_model(project, faces_a):
    result = job.export(project, "dfm", "a-to-b", check_faces=8)
    path = result["path"]
    assert path.endswith(".dfm") and result["bytes"] > 10_000
    assert result["faces_checked"] == 8 and max(result["max_abs_diff"].values()) <= 1e-3

    # The loader's own steps: names, shapes, one dynamic batch; then a run as DeepFaceLive feeds it.
    sess = verify.session(path, ["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == "in_face:0" and inp.shape[1:] == [32, 32, 3]
    assert [o.name for o in sess.get_outputs()] == ["out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0"]
    bgr = faces_a[..., ::-1].astype(np.float32) / 255.0
    face_mask, celeb, celeb_mask = sess.run(None, {"in_face:0": bgr})
    assert face_mask.shape == celeb_mask.shape == (8, 32, 32, 1) and celeb.shape == (8, 32, 32, 3)

    # Against the JAX swapper convert uses: B's face (BGR back to RGB) and B's learned mask.
    rgb, mask = _jax_swap(project, faces_a, "a-to-b")
    assert np.abs(celeb[..., ::-1] - rgb).max() <= 1e-3
    assert np.abs(celeb_mask[..., 0] - mask).max() <= 1e-3
    assert 0.0 <= face_mask.min() and face_mask.max() <= 1.0


def test_onnx_b_to_a_and_provenance(project):
    out = project.root / "elsewhere" / "model.onnx"
    result = job.export(project, "onnx", "b-to-a", output=str(out), check_faces=4)
    assert out.is_file() and result["path"] == str(out)
    assert result["faces_checked"] == 4 and max(result["max_abs_diff"].values()) <= 1e-3
    meta = onnx_file.read_metadata(out)
    assert meta["facepair.synthetic"] == "true" and "synthetic" in meta["facepair.notice"]
    assert meta["facepair.project"] == project.name and meta["facepair.direction"] == "b-to-a"
    consent = json.loads(meta["facepair.consent"])
    assert consent["statement"] == project.consent.statement and consent["recorded"]
    assert meta["facepair.step"] == str(result["step"]) and meta["facepair.preset"] == "tiny"
    # The tiny model keeps no moving average: what was traced is the last step's weights.
    assert meta["facepair.architecture"] == "df" and meta["facepair.weights"] == "raw"
    sess = verify.session(out, ["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["face"]
    assert [o.name for o in sess.get_outputs()] == ["swapped", "mask"]


def test_fp16_export_is_smaller_and_within_1e_2(project, faces_a):
    full = job.export(project, "onnx", "a-to-b", output=str(project.root / "f32.onnx"), check_faces=0)
    half = job.export(project, "onnx", "a-to-b", output=str(project.root / "f16.onnx"), fp16=True, check_faces=8)
    assert half["bytes"] < 0.7 * full["bytes"]
    assert 0 < max(half["max_abs_diff"].values()) <= 1e-2
    sess = verify.session(half["path"], ["CPUExecutionProvider"])
    swapped, mask = sess.run(None, {"face": faces_a.astype(np.float32) / 255.0})
    rgb, jmask = _jax_swap(project, faces_a, "a-to-b")
    assert swapped.dtype == np.float32 and np.abs(swapped - rgb).max() <= 1e-2
    assert np.abs(mask - jmask).max() <= 1e-2


def test_a_file_that_fails_its_check_is_removed(project, monkeypatch):
    out = project.root / "bad.dfm"
    monkeypatch.setattr(verify, "TOLERANCE", {False: 0.0, True: 0.0})
    monkeypatch.setattr(job, "compare", lambda *a, **k: {"out_celeb_face:0": 0.5})
    with pytest.raises(Exception, match="differs from the model"):
        job.export(project, "dfm", "a-to-b", output=str(out), check_faces=1)
    assert not out.exists()


def test_check_dfm_refuses_a_plain_onnx_file(project):
    result = job.export(project, "onnx", "a-to-b", output=str(project.root / "plain.onnx"), check_faces=0)
    with pytest.raises(verify.ContractError, match="in_face"):
        verify.check_dfm(result["path"], 32)


@pytest.mark.parametrize("preset", ["lite", "original", "hq128", "hq256"])
def test_every_preset_exports(preset):
    """Traced and checked as ONNX (not run: the big presets take seconds to minutes per batch here)."""
    from flax import nnx

    from core.jaxmodels.architectures import build_model
    from core.jaxmodels.presets import get_preset
    from core.train.model_io import LoadedModel

    p = get_preset(preset)
    graphdef, state = nnx.split(build_model(p))
    loaded = LoadedModel(preset=p, step=0, graphdef=graphdef, params=nnx.to_pure_dict(state))
    fn = graph.build(loaded, "dfm", "a-to-b", False, p.coverage or 2.0, (0.49, 0.62))
    model = onnx_file.trace(fn, p.resolution, *graph.io_names("dfm"), name=preset)
    import onnx

    onnx.checker.check_model(model)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    assert model.graph.input[0].name == "in_face:0" and dims == [p.resolution, p.resolution, 3]
    assert [o.name for o in model.graph.output] == list(graph.DFM_OUTPUTS)


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax2onnx", None)  # import jax2onnx → ImportError
    with pytest.raises(onnx_file.ExportUnavailable, match=r"\.\[export\]"):
        onnx_file.require()


def test_no_model_says_train_first(extracted_project_copy):
    from core.train.model_io import NoModel

    with pytest.raises(NoModel, match="facepair train"):
        job.export(extracted_project_copy, "dfm")


def test_deepfacelive_settings_cut_facepairs_crop(extracted_project):
    """On the project's real landmarks, DeepFaceLive's aligner with the exported settings cuts the
    crop the model was trained on, within 3 % of the crop side (its 25-point fit vs our 51)."""
    from core.faces.alignments import load_for_source

    a = load_for_source(extracted_project, extracted_project.sources_of("a")[0].id)
    lms = a.landmarks[:16]
    worst = max(crop.fit_difference(lm, 64, 1.6, (0.490127, 0.62)) for lm in lms)
    assert worst <= 0.03
    s = crop.deepfacelive_settings(1.6, (0.490127, 0.62))
    assert (s["face_coverage"], s["x_offset"], s["y_offset"]) == (1.6, -0.01, 0.2)


def test_facefusion_crop_is_a_whole_face_crop():
    c = crop.facefusion_crop()
    assert 1.8 < c["coverage"] < 2.2 and 0.35 < c["center"][1] < 0.5


def test_convert_with_the_onnx_engine_gives_the_jax_engines_image(project, tmp_path, astronaut):
    """`convert --engine onnx` on a real portrait: the same swapped image as JAX's, to a unit of
    8-bit rounding (the mask and colour transfer see outputs within 1e-3)."""
    import cv2

    from core.jobs import control as jobs
    from core.media import read as media

    src = tmp_path / "astronaut.png"
    cv2.imwrite(str(src), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    outs = {}
    for engine in ("jax", "onnx"):
        out = tmp_path / f"out_{engine}.png"
        done = jobs.run_inline(project, "convert", {"input": str(src), "output": str(out), "faces": "all",
                                                    "mask": "learned", "engine": engine})
        assert done.state == "succeeded", done.reason
        assert done.result["faces_swapped"] == 1
        outs[engine] = media.read_image(out).astype(int)
    diff = np.abs(outs["jax"] - outs["onnx"])
    assert diff.max() <= 2 and diff.mean() < 0.05
    assert np.abs(outs["jax"] - astronaut.astype(int)).max() > 20  # the face was swapped at all
    cached = sorted(p.name for p in (project.model_dir / "onnx").iterdir())
    assert len(cached) == 1 and cached[0].endswith("-to-b.onnx")  # exported once, for B's decoder


def test_onnx_swapper_matches_the_jax_swapper_for_every_direction(project, faces_a):
    from core.export.engine import load_onnx_swapper

    onnx = load_onnx_swapper(project, batch=3)  # batches of 3 over 8 faces: a partial last batch
    for direction in ("a-to-b", "b-to-a", "a-to-a", "b-to-b"):
        rgb, mask = onnx.swap(faces_a, direction)
        jrgb, jmask = _jax_swap(project, faces_a, direction)
        assert rgb.shape == jrgb.shape and np.abs(rgb - jrgb).max() <= 1e-3
        assert np.abs(mask - jmask).max() <= 1e-3
