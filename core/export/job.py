"""The `export` job: the newest checkpoint as an ONNX or .dfm file, checked with ONNX Runtime.

Steps: load the model (core.train.model_io.load_model), trace the format's function
(core.export.graph) with jax2onnx, write it with facepair's provenance in its metadata, then run
it with ONNX Runtime on real faces of the input side against the JAX model (fp32: within 1e-3,
fp16: 1e-2; a file that misses is removed, never left for someone to use) and, for .dfm, load it
the way DeepFaceLive does. Exported models carry the same labels as converted media: the
metadata says that what they make is synthetic, and which project and consent they come from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import FacepairError
from core.export import crop, graph, onnx_file, verify
from core.media.label import SOURCE_TYPE
from core.system.clock import now_iso

NOTICE = ("A facepair face-swap model: every image it makes is synthetic (an AI-generated face of a real "
          "person). Label its outputs as synthetic and use it only as the consent below allows.")
SUFFIX = {"onnx": ".onnx", "dfm": ".dfm"}


def default_output(project, fmt: str, direction: str, step: int) -> Path:
    return project.root / "exports" / f"{project.name}_{direction}_step{step}{SUFFIX[fmt]}"


def geometry(project, loaded, direction: str) -> tuple[float, tuple[float, float]]:
    """(coverage, center) of the crops the model takes: the model's own coverage (a sub-crop of the
    extracted one) where it has one, centred as the input side's crops were extracted."""
    from core.faces.alignments import crop_geometry

    coverage, center = crop_geometry(project, graph.DIRECTIONS[direction][0])
    return float(loaded.preset.coverage or coverage), center


def provenance(project, loaded, fmt: str, direction: str, fp16: bool, coverage: float, center) -> dict:
    """The metadata every exported file carries (strings; nested values as JSON)."""
    from core import __version__

    c = project.consent
    return {
        "facepair.synthetic": "true", "facepair.notice": NOTICE, "facepair.digital_source_type": SOURCE_TYPE,
        "facepair.project": project.name, "facepair.labels": {"a": project.label("a"), "b": project.label("b")},
        "facepair.consent": {"statement": c.statement, "by": list(c.by), "recorded": c.recorded},
        "facepair.exported": now_iso(), "facepair.version": __version__, "facepair.format": fmt,
        "facepair.direction": direction, "facepair.preset": loaded.preset.name, "facepair.step": str(loaded.step),
        "facepair.architecture": loaded.preset.arch, "facepair.weights": loaded.weights,
        "facepair.precision": "float16" if fp16 else "float32",
        "facepair.crop": {"coverage": coverage, "center": list(center), "resolution": loaded.preset.resolution,
                          "convention": "core/faces/align.py: dlib mean face (landmarks 17-67), square of "
                                        "`coverage` mean-face units centred on `center`"},
        "facepair.deepfacelive_aligner": crop.deepfacelive_settings(coverage, center),
        "facepair.io": {"inputs": list(graph.io_names(fmt)[0]), "outputs": list(graph.io_names(fmt)[1]),
                        "colour": "RGB" if fmt == "onnx" else "BGR", "range": [0, 1]},
        **_origin(project),
    }


def _origin(project) -> dict:
    """A warm-started model's origin (core.train.warm_start): the other project, its people and
    their consent travel with every export of weights that began as theirs."""
    from core.train.warm_start import load_record

    rec = load_record(project.model_dir)
    return {"facepair.init_from": rec} if rec else {}


def sample_faces(project, side: str, loaded, n: int) -> np.ndarray:
    """Up to n of the side's faces at the model's crop, float32 RGB in [0, 1] (empty when n is 0)."""
    from core.faces.faceset import load_faceset

    r = loaded.preset.resolution
    if n <= 0:
        return np.zeros((0, r, r, 3), np.float32)
    fs = load_faceset(project, side, size=r, limit=n, coverage=loaded.preset.coverage)
    return fs.images.astype(np.float32) / 255.0


def compare(loaded, fmt, direction, fp16, coverage, center, path: Path, faces: np.ndarray) -> dict[str, float]:
    """max |ONNX Runtime − JAX (fp32)| per output on `faces` (RGB in [0, 1])."""
    import jax

    if not len(faces):
        return {}
    x = faces[..., ::-1].copy() if fmt == "dfm" else faces
    reference = jax.jit(graph.build(loaded, fmt, direction, False, coverage, center))(x)
    sess = verify.session(path, ["CPUExecutionProvider"])
    theirs = sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})
    return verify.max_differences(tuple(reference), tuple(theirs), graph.io_names(fmt)[1])


def export(project, fmt: str = "dfm", direction: str = "a-to-b", output: str | None = None, fp16: bool = False,
           check_faces: int = 8, ctx=None) -> dict:
    """Write the export and check it; returns what a user (or a script) needs to know about it."""
    from core.train import model_io

    onnx_file.require()
    say = (lambda *a, **k: None) if ctx is None else ctx.progress
    say(0, 4, stage="loading the model", force=True)
    loaded = model_io.load_model(project, warn=None if ctx is None else ctx.warning, dtype=_f32())
    coverage, center = geometry(project, loaded, direction)
    path = Path(output).expanduser() if output else default_output(project, fmt, direction, loaded.step)
    say(1, 4, stage="tracing the model to ONNX", force=True)
    fn = graph.build(loaded, fmt, direction, fp16, coverage, center)
    model = onnx_file.trace(fn, loaded.preset.resolution, *graph.io_names(fmt), name=f"facepair-{project.name}")
    meta = provenance(project, loaded, fmt, direction, fp16, coverage, center)
    onnx_file.set_metadata(model, meta)
    model.producer_name, model.doc_string = "facepair", NOTICE
    say(2, 4, stage=f"writing {path.name}", force=True)
    size = onnx_file.write(model, path)
    say(3, 4, stage="checking it with ONNX Runtime", force=True)
    try:
        faces = sample_faces(project, graph.DIRECTIONS[direction][0], loaded, check_faces)
        diffs = compare(loaded, fmt, direction, fp16, coverage, center, path, faces)
        _within(diffs, verify.TOLERANCE[fp16])
        contract = verify.check_dfm(path, loaded.preset.resolution) if fmt == "dfm" else None
    except BaseException:
        path.unlink(missing_ok=True)  # a file that fails its check is not left for anyone to use
        raise
    say(4, 4, stage="done", force=True)
    return {"path": str(path), "format": fmt, "swap": direction, "bytes": size, "fp16": fp16,
            "preset": loaded.preset.name, "step": loaded.step, "resolution": loaded.preset.resolution,
            "faces_checked": int(len(faces)), "max_abs_diff": diffs, "tolerance": verify.TOLERANCE[fp16],
            "contract": contract, "deepfacelive_aligner": meta["facepair.deepfacelive_aligner"],
            "crop": meta["facepair.crop"]}


def _within(diffs: dict[str, float], tol: float) -> None:
    worst = max(diffs.items(), key=lambda kv: kv[1], default=None)
    if worst is not None and worst[1] > tol:
        raise FacepairError(f"the exported graph differs from the model: output {worst[0]} by {worst[1]:.2e} "
                            f"(more than {tol:g}); the file was removed. Please report this")


def _f32():
    import jax.numpy as jnp

    return jnp.float32


def run_job(ctx, format: str = "dfm", swap: str = "a-to-b", output: str | None = None, fp16: bool = False,
            check_faces: int = 8) -> dict:
    """The `export` job kind: `export`, its result also said in one line."""
    result = export(ctx.project, format, swap, output, fp16, check_faces, ctx=ctx)
    worst = max(result["max_abs_diff"].values(), default=None)
    checked = (f"; ONNX Runtime matches the model within {worst:.1e} on {result['faces_checked']} faces"
               if worst is not None else "")
    ctx.message(f"wrote {result['path']} ({result['bytes'] / 1e6:.1f} MB, {result['preset']} step "
                f"{result['step']}){checked}")
    return result
