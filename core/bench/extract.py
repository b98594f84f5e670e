"""`facepair bench extract`: the extraction pipeline against a naive loop, on the same video.

The naive loop is what a first version would do: every frame, dlib's HOG detector on the
full-resolution RGB frame at upsample 1, then the 68 landmarks of every face; one process.
The pipeline is `facepair extract` itself (keyframe detection on a rescaled grey frame,
tracking with landmarks, smoothing, alignment, crops, store, identity filter), run into a
temporary project with the default settings: one worker process per core for a source of 300
frames or more, this process for a shorter one (`workers` says which).

Reported (`run()` returns `{"extract": {...}}`):
- `frames_per_s`, `naive_frames_per_s`, `ratio`: frames of the video / wall seconds, from start
  to the last frame (loading the models and decoding included for both);
- `faces`, `naive_faces`: frames where at least one face was found;
- `recall`: of the frames where the naive loop finds a face, the share where the pipeline finds
  one too;
- `landmark_px`: mean distance (px) between the naive loop's landmarks and the pipeline's raw
  landmarks for the same face (matched by box overlap) on those frames; `landmark_px_smoothed`
  the same for the smoothed landmarks the crops use.
Also `single_frames_per_s` / `single_ratio` (the pipeline in one process: on a shared, busy
machine this is the fairer comparison, since a loaded scheduler gives a session about the same
CPU share however many processes it runs), `find_frames_per_s` (face finding alone, optional),
`frames`, `workers`, `video`, `seconds`, `naive_seconds`.

Standalone: `python -m core.bench.extract [VIDEO] [--json] [--workers N]`. Without a video it uses
../shared/data/video/short_hamilton_clip.mp4 when present, else a synthetic clip.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED_VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video" / "short_hamilton_clip.mp4"


def default_video(tmp: Path) -> Path:
    if SHARED_VIDEO.is_file():
        return SHARED_VIDEO
    from core.media import synth

    return synth.portrait_clip("astronaut", tmp / "bench_astronaut.mp4", frames=120, size=(640, 360), seed=3)


def naive_loop(video: Path) -> tuple[dict[int, list[tuple[np.ndarray, np.ndarray]]], float, int]:
    """{frame: [(box, landmarks)]}, wall seconds, frames — the reference the pipeline is measured against."""
    import dlib

    from core.faces import detect
    from core.media import read as media

    detect._models.clear()
    t0 = time.perf_counter()  # loading the models counts, as it does for the pipeline
    det = dlib.get_frontal_face_detector()
    detect.warm_up("hog")
    out: dict[int, list] = {}
    n = 0
    for fr in media.iter_frames(video):
        n += 1
        faces = []
        for r in det(fr.image, 1):
            box = detect.Detection(r.left(), r.top(), r.right(), r.bottom(), 0.0)
            faces.append((box.as_array(), detect.landmarks(fr.image, box)))
        if faces:
            out[fr.index] = faces
    return out, time.perf_counter() - t0, n


def _pipeline(video: Path, tmp: Path, workers: int, **opts):
    from core.extract import pipeline as extract
    from core.faces import alignments
    from core.project.projects import add_sources, create_project

    project = create_project(tmp, "bench", "A", "B", "benchmark run on a test video")
    add_sources(project, "a", [video])
    from core.faces import detect

    detect._models.clear()  # every run loads its models, as a fresh job does
    t0 = time.perf_counter()
    result = extract.extract(project, side="a", workers=workers, **opts)
    dt = time.perf_counter() - t0
    return alignments.load_for_source(project, project.sources_of("a")[0].id), dt, result["sides"]["a"]["workers"]


def _find_only(video: Path, workers: int) -> tuple[float, int]:
    from core.extract import finder as extract
    from core.media import read as media

    t0 = time.perf_counter()
    n = sum(1 for _ in extract.find_faces(media.iter_frames(video), extract.FindOptions(), workers=workers))
    return time.perf_counter() - t0, n


def compare(naive: dict, store) -> dict:
    """Recall and landmark distances of the pipeline's store against the naive loop's faces."""
    found = {int(f) for f in np.unique(store.face_frame)}
    both = [f for f in naive if f in found]
    raw_d, smooth_d = [], []
    from core.faces.detect import iou

    for f in both:
        rows = store.faces_in(f)
        for box, lm in naive[f]:
            best = max(rows, key=lambda r: iou(store.box[r], box))
            if iou(store.box[best], box) < 0.3:
                continue
            raw_d.append(float(np.linalg.norm(store.landmarks_raw[best] - lm, axis=1).mean()))
            smooth_d.append(float(np.linalg.norm(store.landmarks[best] - lm, axis=1).mean()))
    return {
        "faces": len(found),
        "naive_faces": len(naive),
        "recall": len(both) / len(naive) if naive else None,
        "landmark_px": float(np.mean(raw_d)) if raw_d else None,
        "landmark_px_smoothed": float(np.mean(smooth_d)) if smooth_d else None,
    }


def run(video: str | Path | None = None, workers: int | None = None, find_only: bool = False,
        single: bool = True, **opts) -> dict:
    """Run the naive loop and the pipeline on one video; returns {"extract": {...}} (module notes).
    `single`: also time the pipeline in one process (`single_frames_per_s`); `find_only`: also
    time face finding alone (`find_frames_per_s`)."""
    from core.extract import finder as extract
    from core.media.probe import probe

    workers = int(workers or extract.default_workers())
    with tempfile.TemporaryDirectory(prefix="facepair-bench-") as d:
        tmp = Path(d)
        video = Path(video) if video else default_video(tmp)
        probe(video)  # a clear error for a bad path before anything runs
        store, dt, used = _pipeline(video, tmp / "p", workers, **opts)
        single_dt = _pipeline(video, tmp / "s", 1, **opts)[1] if single and used > 1 else None
        find_dt, _ = _find_only(video, workers) if find_only else (None, None)
        naive, naive_dt, n = naive_loop(video)
    fps, naive_fps = n / dt, n / naive_dt
    res = {
        "video": str(video),
        "frames": n,
        "workers": used,
        "seconds": round(dt, 2),
        "naive_seconds": round(naive_dt, 2),
        "frames_per_s": round(fps, 2),
        "naive_frames_per_s": round(naive_fps, 2),
        "ratio": round(fps / naive_fps, 2),
        "single_frames_per_s": round(n / single_dt, 2) if single_dt else None,
        "single_ratio": round(naive_dt / single_dt, 2) if single_dt else None,
        "find_frames_per_s": round(n / find_dt, 2) if find_dt else None,
        **compare(naive, store),
    }
    for k in ("recall", "landmark_px", "landmark_px_smoothed"):
        if res[k] is not None:
            res[k] = round(res[k], 3)
    return {"extract": res}


def format_table(result: dict) -> str:
    r = result["extract"]
    rows = [
        ("", "frames/s", "frames with a face"),
        ("pipeline (facepair extract)", f"{r['frames_per_s']:.1f}", f"{r['faces']}"),
        ("naive loop", f"{r['naive_frames_per_s']:.1f}", f"{r['naive_faces']}"),
    ]
    w0 = max(len(x[0]) for x in rows)
    lines = [f"{a:<{w0}}  {b:>9}  {c:>18}" for a, b, c in rows]
    lines.append(f"ratio {r['ratio']:.2f}×, recall {100 * (r['recall'] or 0):.1f}% of the naive loop's frames, "
                 f"landmarks {r['landmark_px'] if r['landmark_px'] is not None else '-'} px from it "
                 f"(smoothed {r['landmark_px_smoothed'] if r['landmark_px_smoothed'] is not None else '-'} px); "
                 f"{r['workers']} workers, {r['frames']} frames of {Path(r['video']).name}")
    if r.get("single_frames_per_s"):
        lines.append(f"in one process: {r['single_frames_per_s']:.1f} frames/s, {r['single_ratio']:.2f}× the naive loop")
    if r.get("find_frames_per_s"):
        lines.append(f"face finding alone: {r['find_frames_per_s']:.1f} frames/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.bench.extract", description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", help="a video (default: the shared test clip, else a synthetic one)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-single", action="store_true", help="skip the one-process run of the pipeline")
    ap.add_argument("--find-only", action="store_true", help="also time face finding alone")
    args = ap.parse_args(argv)
    from core.errors import FacepairError

    try:
        result = run(args.video, workers=args.workers, single=not args.no_single, find_only=args.find_only)
    except FacepairError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
