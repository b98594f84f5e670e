"""The conversion benchmark: frames per second for decode, inference, merge and encode, and end to end.

    python -m core.bench.convert [VIDEO] [--preset lite] [--project NAME] [--detect] [--json]
    facepair bench convert …   (core/bench/report.py calls `run`)

What is measured, on VIDEO (default ../shared/data/video/short_hamilton_clip.mp4; a synthetic
640×360 clip when that is absent):
1. `decode_fps`: decoding alone (core.media.read, its decoder thread).
2. Faces are found once (core.extract.finder.find_faces, as extraction finds them; `find_fps`) and kept,
   so the timed run gets its faces the way an extracted input does (from its alignments store).
3. The model (PRESET's architecture; the project's trained weights with --project, else freshly
   initialised ones: the speed is the same) is built (`load_s`) and compiled for the one batch
   shape the pipeline uses (`compile_s`) before the timed run.
4. The timed run is the conversion pipeline exactly as `facepair convert` runs it: decode → swap
   (batched, jitted) → merge → visible label → H.264 encode with the audio copied and the metadata,
   then the C2PA signature. `frames_per_s` = frames ÷ wall time of all of it. The stages run
   concurrently; `infer_fps`, `merge_fps` and `encode_fps` are frames ÷ the time each stage was
   busy in that run (so they show which stage sets the pace, on a CPU shared by all of them).
With --detect, a second run finds faces on the fly (`frames_per_s_detect`), as for an input that
was never extracted.
5. With `--engine both` (the default where the `export` extra is installed) steps 3-4 run again with
   the model exported to ONNX and run by ONNX Runtime (`convert --engine onnx`; the export and the
   session's start count as its `compile_s`): `engines` holds both engines' figures side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED_VIDEO = ROOT.parent / "shared" / "data" / "video" / "short_hamilton_clip.mp4"


def _device() -> str:
    try:
        import jax

        d = jax.devices()[0]
        return f"{d.platform}:{getattr(d, 'device_kind', '')}".rstrip(":")
    except Exception as e:  # noqa: BLE001 - the benchmark still reports the rest
        return f"unknown ({e})"


def _video(video: str | None, workdir: Path) -> tuple[Path, bool]:
    if video:
        return Path(video).expanduser().resolve(), False
    if SHARED_VIDEO.is_file():
        return SHARED_VIDEO, False
    from core.media import synth

    return synth.portrait_clip("astronaut", workdir / "bench_clip.mp4", frames=120, size=(640, 360), seed=3,
                               audio=True, fps=30.0), True


class FreshModel:
    """The preset's model with freshly initialised weights, for timing only (the speed of a swap
    does not depend on what the weights are). Same call as core.train.model_io's swapper."""

    def __init__(self, preset: str):
        from core.jaxmodels.step import Trainer

        self.trainer = Trainer(preset, batch=1)
        self.params = self.trainer.init_state(0).params
        self.preset = self.trainer.preset.name
        self.resolution = self.trainer.preset.resolution
        self.has_mask = self.trainer.preset.mask
        self.step = 0

    def swap(self, faces: np.ndarray, direction: str = "a-to-b"):
        rgb, mask = self.trainer.predict(self.params, faces, "b" if direction == "a-to-b" else "a")
        return np.asarray(rgb), (None if mask is None else np.asarray(mask))


def _swapper(preset: str, project: str | None, home: str | None, engine: str = "jax", work: Path | None = None):
    if project:
        from core.convert.converter import load_swapper
        from core.project.projects import home_dir, load_project

        return load_swapper(load_project(home_dir(home), project), engine=engine)
    fresh = FreshModel(preset)
    return fresh if engine == "jax" else _fresh_onnx(fresh, work)


def _fresh_onnx(fresh: FreshModel, work: Path):
    """The fresh model exported to ONNX in `work`, run by ONNX Runtime."""
    from core.export.engine import make_swapper
    from core.train.model_io import LoadedModel

    loaded = LoadedModel(preset=fresh.trainer.preset, step=0, graphdef=fresh.trainer.graphdef, params=fresh.params)
    return make_swapper(loaded, lambda side: work / f"fresh-to-{side}.onnx", lambda side: {})


def engines_available() -> tuple[str, ...]:
    """jax, and onnx where the `export` extra is installed."""
    from core.export.onnx_file import ExportUnavailable, require

    try:
        require()
    except ExportUnavailable:
        return ("jax",)
    return ("jax", "onnx")


def _warm(swapper, batch: int) -> float:
    """Compile the one batch shape the pipeline uses; returns the seconds it took."""
    t0 = time.perf_counter()
    r = int(swapper.resolution)
    swapper.swap(np.zeros((batch, r, r, 3), np.uint8), direction="a-to-b")
    return time.perf_counter() - t0


def _decode(path: Path) -> tuple[int, float]:
    """(frames decoded, seconds): decoding alone."""
    from core.media import read as media

    t0 = time.perf_counter()
    n = sum(1 for _ in media.iter_frames(path))
    return n, time.perf_counter() - t0


def _find_all(path: Path) -> tuple[dict[int, list[np.ndarray]], float]:
    """({frame: the landmarks of its faces}, seconds): faces found once, as extraction finds them."""
    from core.extract import finder as extract
    from core.media import read as media

    t0 = time.perf_counter()
    faces: dict[int, list[np.ndarray]] = {}
    for fr, found in extract.find_faces(media.iter_frames(path), extract.FindOptions(video=True),
                                        workers=extract.default_workers()):
        faces[fr.index] = [np.asarray(f.landmarks, np.float32) for f in found]
    return faces, time.perf_counter() - t0


def _stored(path: Path, faces: dict[int, list[np.ndarray]]):
    """The frames with the faces found beforehand (as an extracted input's store gives them)."""
    from core.convert.sources import FaceWork, FrameWork
    from core.media import read as media

    for fr in media.iter_frames(path):
        yield FrameWork(fr.index, fr.image, faces=[FaceWork(landmarks=lm) for lm in faces.get(fr.index, [])])


def _timed_conversion(swapper, path: Path, info, out: Path, frames, batch: int, crf: int, work: Path):
    """One conversion of `frames` into `out`, labelled and signed as `convert` does: (seconds, the
    converter, its stages' busy seconds, the C2PA signing's seconds)."""
    from core.convert.converter import Converter
    from core.convert.merge import MergeOptions
    from core.media import label
    from core.media import write as video_out
    from core.media.probe import describe
    from core.system.clock import now_iso

    conv = Converter(swapper, "a-to-b", MergeOptions(), matcher=None, coverage=2.0,
                     center=(0.490127, 0.62), visible_label=True, batch=batch)
    desc = describe(path, count_frames=False)
    audio = next((s for s in desc["streams"] if s["kind"] == "audio"), None)
    kw = {}
    if audio is not None:
        kw = {"audio_from": path, "audio_codec": audio.get("codec"),
              "video_delay": (desc.get("video_start") or 0.0) - (desc.get("start") or 0.0)}
    created = now_iso()
    t_start = time.perf_counter()
    writer = video_out.VideoWriter(out, info.fps or 25.0, (info.width, info.height), crf=crf,
                                   metadata=label.metadata("bench", created), **kw)
    pipe = conv.run((conv.select(fr, fr.faces) for fr in frames), lambda fr, img: writer.write(img))
    t_c2pa = {}

    def sign(p: Path) -> None:
        t = time.perf_counter()
        t_c2pa["reason"] = label.embed_c2pa(p, work / "home", "bench", created)
        t_c2pa["s"] = time.perf_counter() - t

    writer.close(before_rename=[sign])
    return time.perf_counter() - t_start, conv, pipe.busy, t_c2pa.get("s", 0.0)


def _fps(n: int, seconds: float) -> float | None:
    return round(n / seconds, 1) if seconds > 0 else None


def _engine_run(engine: str, preset, project, home, batch, crf, path, info, faces, work) -> dict:
    """One engine's timed conversion: its figures."""
    t0 = time.perf_counter()
    swapper = _swapper(preset, project, home, engine, work)
    load_s = time.perf_counter() - t0
    compile_s = _warm(swapper, batch)
    total, conv, busy, _ = _timed_conversion(swapper, path, info, work / f"out_{engine}.mp4", _stored(path, faces),
                                             batch, crf, work)
    c = conv.counters
    return {"frames_per_s": _fps(c.frames_out, total), "infer_fps": _fps(c.frames_out, busy.get("infer", 0.0)),
            "infer_faces_per_s": _fps(c.faces_swapped, busy.get("infer", 0.0)), "seconds": round(total, 3),
            "compile_s": round(compile_s, 3), "load_s": round(load_s, 3)}


def run(video: str | None = None, preset: str = "lite", project: str | None = None, home: str | None = None,
        batch: int = 32, detect: bool = False, crf: int = 18, engine: str = "both", **_ignored) -> dict:
    """Benchmark one conversion; returns {"convert": {...}} (see the module notes for each key)."""
    from core.convert.sources import frames_detected
    from core.media import read as media
    from core.media.probe import probe

    with tempfile.TemporaryDirectory(prefix="facepair-bench-convert-") as tmp:
        work = Path(tmp)
        path, synthetic = _video(video, work)
        info = probe(path)
        n_decoded, decode_s = _decode(path)
        faces, find_s = _find_all(path)
        t0 = time.perf_counter()
        swapper = _swapper(preset, project, home)
        load_s = time.perf_counter() - t0
        compile_s = _warm(swapper, batch)
        total, conv, busy, c2pa_s = _timed_conversion(swapper, path, info, work / "out_stored.mp4",
                                                      _stored(path, faces), batch, crf, work)
        c = conv.counters
        result = {
            "video": str(path), "synthetic_video": synthetic, "width": info.width, "height": info.height,
            "frames": c.frames_out, "faces": c.faces_swapped, "preset": getattr(swapper, "preset", preset),
            "resolution": int(swapper.resolution), "batch": batch, "device": _device(),
            "frames_per_s": _fps(c.frames_out, total),
            "decode_fps": _fps(n_decoded, decode_s),
            "find_fps": _fps(n_decoded, find_s),
            "infer_fps": _fps(c.frames_out, busy.get("infer", 0.0)),
            "infer_faces_per_s": _fps(c.faces_swapped, busy.get("infer", 0.0)),
            "merge_fps": _fps(c.frames_out, busy.get("merge", 0.0)),
            "encode_fps": _fps(c.frames_out, busy.get("encode", 0.0)),
            "seconds": round(total, 3), "c2pa_s": round(c2pa_s, 3), "compile_s": round(compile_s, 3),
            "load_s": round(load_s, 3),
            "faces_from": "found beforehand (as an extracted input's alignments store gives them)",
        }
        if detect:
            total_d, conv_d, _, _ = _timed_conversion(swapper, path, info, work / "out_detected.mp4",
                                                      frames_detected(media.iter_frames(path), video=True),
                                                      batch, crf, work)
            result["frames_per_s_detect"] = _fps(conv_d.counters.frames_out, total_d)
        result["engines"] = {"jax": {k: result[k] for k in ("frames_per_s", "infer_fps", "infer_faces_per_s",
                                                             "seconds", "compile_s", "load_s")}}
        wanted = engines_available() if engine == "both" else (engine,)
        for other in (e for e in wanted if e != "jax"):
            result["engines"][other] = _engine_run(other, preset, project, home, batch, crf, path, info, faces, work)
        return {"convert": result}


def format_table(result: dict) -> str:
    r = result["convert"]
    rows = [
        ("end to end", r["frames_per_s"], f"{r['frames']} frames, {r['faces']} faces, {r['seconds']} s "
                                          f"(C2PA {r['c2pa_s']} s)"),
        ("decode", r["decode_fps"], "alone"),
        ("inference", r["infer_fps"], f"{r['infer_faces_per_s']} faces/s, {r['preset']} {r['resolution']} px, "
                                      f"batch ≤ {r['batch']}, {r['device']} (compile {r['compile_s']} s)"),
        ("merge", r["merge_fps"], "colour transfer, mask, blend, warp back, label"),
        ("encode", r["encode_fps"], "H.264 through ffmpeg, audio copied"),
        ("find faces", r["find_fps"], "on the fly (not part of end to end: faces as from the store)"),
    ]
    if "frames_per_s_detect" in r:
        rows.append(("end to end, detecting", r["frames_per_s_detect"], "faces found on the fly"))
    for name, e in r.get("engines", {}).items():
        if name != "jax":
            rows.append((f"end to end, {name}", e["frames_per_s"], f"the same run with the {name} engine "
                         f"(export + session {e['compile_s']} s)"))
            rows.append((f"inference, {name}", e["infer_fps"], f"{e['infer_faces_per_s']} faces/s "
                         f"(jax: {r['infer_faces_per_s']})"))
    width = max(len(n) for n, _, _ in rows)
    lines = [f"convert: {Path(r['video']).name} ({r['width']}×{r['height']}"
             + (", synthetic" if r["synthetic_video"] else "") + ")"]
    for name, value, note in rows:
        lines.append(f"  {name:<{width}}  {value if value is not None else '-':>7} fps   {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.bench.convert", description=__doc__.split("\n\n")[0])
    ap.add_argument("video", nargs="?", help="video to convert (default: the shared Hamilton clip)")
    ap.add_argument("--preset", default="lite")
    ap.add_argument("--project", help="use this project's trained model instead of fresh weights")
    ap.add_argument("--home", help="projects home (with --project)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--detect", action="store_true", help="also time a run that finds faces on the fly")
    ap.add_argument("--engine", choices=("jax", "onnx", "both"), default="both",
                    help="both (default): JAX, then ONNX Runtime where the export extra is installed")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    result = run(args.video, preset=args.preset, project=args.project, home=args.home, batch=args.batch,
                 detect=args.detect, engine=args.engine)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
