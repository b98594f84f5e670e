"""Swap quality: a converted video measured against its original and the project's two people.

    facepair eval NAME --input VIDEO [--original VIDEO] [--frames N] [--identity-faces K] [--json]

`--input` is a converted video (or the original a convert job of the project converted: its newest
output is taken); the original, the frame offset (`--start`) and the direction come from the convert
job that wrote it, or `--original`. The faces measured are those of the replaced person in the
original (their track's dlib descriptor within 0.6 of that side's faces; every face when the
conversion used `--faces all`), found as extraction finds them. In both videos the 68-point
predictor runs in the *same* box (the original face's), so both sets of landmarks are measured the
same way and a face the conversion spoiled still gets landmarks.

Metrics (dlib's 128-d descriptor: 99.38 % on LFW at distance 0.6):
- identity: the share of swapped faces within 0.6 of B's centroid (the mean descriptor of B's
  extracted faces) and the share still within 0.6 of A's, on `identity_faces` frames spread over
  the clip; the original's shares for comparison; `detected_share`: how many swapped faces dlib's
  HOG detector still finds.
- expression: landmark error over points 17–67 (brows, nose, eyes, mouth: not the jaw, whose shape
  is the new person's) after a similarity fit of the output's points onto the original's, as % of
  the original's inter-ocular distance (eye centres). Pose and expression kept → small. A perfect
  swap is not 0: B's brows, eyes, nose and mouth sit apart as B's do. So, as for pose, the
  residuals (per point, in the original's upright face frame) are also split per track into an
  `offset` (their mean over the track: the new face's proportions, constant while A talks; the
  mean length, % IOD) and a `tracking_error` (the mean distance from it: how far the swap fails to
  follow A's brows, eyes and mouth as they move).
- temporal: jitter = mean ‖p(t+1) − 2 p(t) + p(t−1)‖ over points 17–67 and frames where the face is
  in three consecutive frames (% inter-ocular distance): smooth head motion cancels, frame-to-frame
  shake does not. Output vs input, and their ratio (1 = as steady as the original). Also the plain
  frame-to-frame motion mean ‖p(t+1) − p(t)‖ (same points, same unit) and its ratio.
- pose: yaw, pitch and roll of each face (`cv2.solvePnP` of the 68 landmarks onto a generic 3-D
  face, core/evaluate/quality.py), output vs original: the mean absolute error in degrees of each angle;
  `offset` and `tracking_error`: the per-track median of the signed difference (the generic face
  reading the new person's proportions as a rotation: constant while the head moves) and the mean
  absolute difference once it is removed (whether the swap follows the head's motion).
- detail (at 64 and 128 px): both frames cut by one similarity (from the original's landmarks) to a
  crop of that size at coverage 2.0 (the project's head crop), then the variance of the Laplacian
  inside the inner-face hull (points 17–67): output ÷ original (ratio of the means over faces); next
  to it the `ceiling`, what a perfect model of this model's resolution would score (the original's
  face round-tripped through its crop and put back as the merge does).
- seam: mean ΔE (CIE76, L*a*b*) between a thin band just inside and one just outside the edge of
  the blend mask `facepair convert` builds (hull, the convert job's erosion and feather), sector by
  sector around the face, in the output and in the original on the same bands; `excess` = output −
  original (0 = no visible seam beyond what the original has there).
- control (only with `control`, a self-swap conversion A→A of the same original): SSIM of the
  inner face on the 128 px grid, the detail ratios, the expression error and the 68-point pose
  error of that video against the original (the errors a model makes when the face's shape does not
  change).
- reconstruction: SSIM and PSNR of each side's held-out faces (`model/holdout.json`, never trained
  on) through its own decoder (A→A, B→B), at the model's resolution, next to the same measures on
  up to `TRAIN_FACES` training faces (the gap shows over-fitting).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FacepairError

THRESHOLD = 0.6
POINTS = slice(17, 68)  # brows, nose, eyes, mouth
DEFAULT_FRAMES = 300
DEFAULT_IDENTITY_FACES = 24
CENTROID_FACES = 24
TRAIN_FACES = 32


class EvalError(FacepairError):
    """An evaluation cannot run (no such video, no original, nothing to measure)."""


# ---- which videos --------------------------------------------------------------------------------

@dataclass
class Pair:
    """A converted video, the original it was made from, and how (from the convert job)."""

    converted: Path
    original: Path
    first: int = 0  # the original's frame that is the converted video's frame 0
    swap: str = "a-to-b"
    faces: str = "match"
    job: str | None = None
    erode: int | None = None  # the convert job's blend mask (None: convert's defaults)
    blur: int | None = None


def _same(a, b) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (TypeError, OSError):
        return False


def find_pair(project, input: str, original: str | None = None) -> Pair:
    """The converted video and its original: by the convert job that wrote `input` (or, when `input`
    is a video the project converted, that job's newest output); `original` overrides."""
    from core.convert.plan import parse_time
    from core.jobs import control as jobs
    from core.media.probe import probe

    path = Path(input).expanduser().resolve()
    if not path.is_file():
        raise EvalError(f"--input {path}: no such file")
    converts = [j for j in jobs.project_jobs(project)
                if j.kind == "convert" and j.state == "succeeded" and isinstance(j.result, dict)]
    job = next((j for j in converts if _same(j.result.get("output"), path)), None)
    converted = path
    if job is None and original is None:
        job = next((j for j in converts if _same(j.args.get("input"), path) and j.result.get("output")
                    and Path(j.result["output"]).is_file()), None)
        if job is not None:  # `input` is an original: evaluate its newest conversion
            converted = Path(job.result["output"])
    if original is not None:
        orig = Path(original).expanduser().resolve()
        if not orig.is_file():
            raise EvalError(f"--original {orig}: no such file")
    elif job is not None:
        orig = Path(job.args.get("input", ""))
        if not orig.is_file():
            raise EvalError(f"{converted.name} was converted from {orig}, which is gone; pass --original VIDEO")
    else:
        raise EvalError(f"cannot tell which video {path} was converted from: no convert job of project "
                        f"{project.name!r} wrote it or converted it; pass --original VIDEO")
    if _same(orig, converted):
        raise EvalError(f"{converted} is its own original: pass the converted video as --input")
    for p in (orig, converted):
        if probe(p).kind != "video":  # MediaError for anything unreadable
            raise EvalError(f"{p} is not a video: facepair eval measures a converted video")
    first = 0
    args = job.args if job is not None else {}
    if args.get("start") not in (None, ""):
        fps = probe(orig).fps or 25.0
        first = int(round((parse_time(args["start"]) or 0.0) * fps))
    return Pair(converted=converted, original=orig, first=first, swap=str(args.get("swap", "a-to-b")),
                faces=str(args.get("faces", "match")), job=job.id if job is not None else None,
                erode=_int_or_none(args.get("erode")), blur=_int_or_none(args.get("blur")))


def _int_or_none(v) -> int | None:
    return None if v in (None, "") else int(v)


# ---- pure measures -------------------------------------------------------------------------------

def inter_ocular(lm: np.ndarray) -> float:
    """Distance between the eye centres (points 36–41 and 42–47)."""
    lm = np.asarray(lm, np.float64)
    return float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))


def expression_error(original: np.ndarray, output: np.ndarray) -> float:
    """Mean distance of points 17–67 after the best similarity of the output's onto the original's,
    as % of the original's inter-ocular distance."""
    from core.faces.align import umeyama

    src = np.asarray(output, np.float64)[POINTS]
    dst = np.asarray(original, np.float64)[POINTS]
    t = umeyama(src, dst)
    fitted = src @ t[:2, :2].T + t[:2, 2]
    return float(np.linalg.norm(fitted - dst, axis=1).mean() / max(1e-6, inter_ocular(original)) * 100)


def expression_residual(original: np.ndarray, output: np.ndarray) -> np.ndarray:
    """(51, 2): each of points 17–67 of the output, fitted by a similarity onto the original's, minus
    the original's, in the original's upright face frame (its own similarity onto the mean face) and
    in % of its inter-ocular distance. The mean length is `expression_error`; the frame makes the
    residuals of one face comparable from frame to frame."""
    from core.faces.align import MEAN_FACE, umeyama

    src = np.asarray(output, np.float64)[POINTS]
    dst = np.asarray(original, np.float64)[POINTS]
    up = umeyama(dst, MEAN_FACE)
    dst = dst @ up[:2, :2].T + up[:2, 2]
    t = umeyama(src, dst)
    fitted = src @ t[:2, :2].T + t[:2, 2]
    iod = float(np.linalg.norm(dst[36 - 17:42 - 17].mean(0) - dst[42 - 17:48 - 17].mean(0)))
    return (fitted - dst) / max(1e-9, iod) * 100


def expression_offset_and_tracking(residuals: dict[int, list[np.ndarray]]) -> tuple[float | None, float | None]:
    """(offset, tracking error) of the expression residuals grouped by face track, both % IOD and
    weighted by faces: the mean length of each track's mean residual, and the mean distance of a
    face's residuals from its track's mean."""
    tracks = [np.stack(v) for v in residuals.values() if len(v)]
    if not tracks:
        return None, None
    n = sum(len(t) for t in tracks)
    offset = sum(float(np.linalg.norm(t.mean(0), axis=1).mean()) * len(t) for t in tracks) / n
    tracking = sum(float(np.linalg.norm(t - t.mean(0), axis=2).mean(1).sum()) for t in tracks) / n
    return offset, tracking


def jitter(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, iod: float) -> float:
    """Mean ‖p(t+1) − 2 p(t) + p(t−1)‖ over points 17–67, as % of `iod`."""
    acc = np.asarray(nxt, np.float64)[POINTS] - 2 * np.asarray(cur, np.float64)[POINTS] \
        + np.asarray(prev, np.float64)[POINTS]
    return float(np.linalg.norm(acc, axis=1).mean() / max(1e-6, iod) * 100)


def motion(prev: np.ndarray, cur: np.ndarray, iod: float) -> float:
    """Mean ‖p(t) − p(t−1)‖ over points 17–67, as % of `iod`."""
    d = np.asarray(cur, np.float64)[POINTS] - np.asarray(prev, np.float64)[POINTS]
    return float(np.linalg.norm(d, axis=1).mean() / max(1e-6, iod) * 100)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two RGB images in [0, 1] (scikit-image, Gaussian window as Wang et al.)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1] (capped at 100 dB for identical images)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 100.0 if mse <= 1e-10 else float(10 * math.log10(1.0 / mse))


def _stats(values: list[float]) -> dict:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"mean": None, "median": None, "p90": None}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "p90": float(np.percentile(v, 90))}


def _share(distances: list[float]) -> float | None:
    return float(np.mean(np.asarray(distances) < THRESHOLD)) if distances else None


def _mean(values: list[float]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def _ratio(num: list[float], den: list[float]) -> float | None:
    n, d = _mean(num), _mean(den)
    return n / d if n is not None and d else None


# ---- the people ----------------------------------------------------------------------------------

def references(project, side: str, limit: int = CENTROID_FACES) -> np.ndarray:
    """(K, 128) dlib descriptors of a side's person (the ones extraction stored, or computed on crops)."""
    from core.convert.identity import reference_descriptors
    from core.convert.plan import ConvertError

    try:
        return reference_descriptors(project, side, limit=limit)
    except ConvertError as e:
        raise EvalError(f"evaluation needs side {side}'s faces ({project.label(side)}) to know who that is: {e}") from e


# ---- reconstruction ------------------------------------------------------------------------------

def reconstruction(project, swapper, side: str, holdout: list[str], train_faces: int = TRAIN_FACES) -> dict:
    """SSIM and PSNR of a side's held-out faces (and of a sample of its training faces) through the
    side's own decoder."""
    from core.faces.faceset import load_faceset

    fs = load_faceset(project, side, size=swapper.resolution, coverage=getattr(swapper, "coverage", None))
    held = set(holdout)
    h_idx = [i for i, n in enumerate(fs.names) if n in held]
    t_all = [i for i, n in enumerate(fs.names) if n not in held]
    t_idx = [t_all[int(round(k))] for k in np.linspace(0, len(t_all) - 1, min(train_faces, len(t_all)))] \
        if t_all else []

    def measure(idx: list[int]) -> tuple[float | None, float | None]:
        if not idx:
            return None, None
        faces = fs.images[idx]
        rgb, _ = swapper.swap(faces, f"{side}-to-{side}")
        ref = faces.astype(np.float32) / 255.0
        return (float(np.mean([ssim(r, o) for r, o in zip(ref, rgb, strict=True)])),
                float(np.mean([psnr(r, o) for r, o in zip(ref, rgb, strict=True)])))

    s, p = measure(h_idx)
    ts, tp = measure(t_idx)
    out = {"faces": len(h_idx), "ssim": s, "psnr_db": p, "train_faces": len(t_idx), "train_ssim": ts,
           "train_psnr_db": tp}
    if not h_idx:
        out["note"] = (f"no held-out faces of side {side} (none recorded in model/holdout.json, or they were "
                       f"deleted; a side with fewer than 8 faces at training keeps none back)")
    return out


# ---- the evaluation ------------------------------------------------------------------------------

@dataclass
class _Face:
    track: int
    original: np.ndarray  # (68, 2)
    output: np.ndarray
    iod: float


@dataclass
class _Measures:
    """What the frame loop gathers, face by face (`evaluate`'s sections are made from it)."""

    sizes: tuple[int, ...]
    faces: dict[int, list[_Face]] = field(default_factory=dict)  # frame position → faces measured
    dist: dict = field(default_factory=lambda: {"out": {"a": [], "b": []}, "in": {"a": [], "b": []}})
    expression: list[float] = field(default_factory=list)
    expression_residuals: dict[int, list[np.ndarray]] = field(default_factory=dict)  # by track
    control_expression: list[float] = field(default_factory=list)
    pose_err: dict[str, list[float]] = field(default_factory=lambda: {"yaw": [], "pitch": [], "roll": []})
    pose_signed: dict[str, dict[int, list[float]]] = field(default_factory=lambda: {"yaw": {}, "pitch": {},
                                                                                     "roll": {}})  # by track
    pose_control: dict[str, list[float]] = field(default_factory=lambda: {"yaw": [], "pitch": [], "roll": []})
    det: dict = field(default_factory=dict)
    seam_out: list[float] = field(default_factory=list)
    seam_in: list[float] = field(default_factory=list)
    control_ssim: list[float] = field(default_factory=list)
    detected: int = 0
    considered: int = 0
    skipped_other: int = 0
    count: int = 0

    def __post_init__(self):
        self.det = {k: {z: [] for z in self.sizes} for k in ("in", "out", "ceiling", "control")}


def _frames_compared(pair: Pair, frames: int, ctx):
    """(the original's MediaInfo, how many frames are compared); EvalError when the two videos do
    not belong together or have no frame in common."""
    from core.media.probe import probe

    info_o, info_c = probe(pair.original), probe(pair.converted)
    if (info_o.width, info_o.height) != (info_c.width, info_c.height):
        raise EvalError(f"{pair.converted.name} is {info_c.width}×{info_c.height} and {pair.original.name} "
                        f"{info_o.width}×{info_o.height}: not a conversion of it; pass the right --original")
    n_o = (info_o.frames or 0) - pair.first
    n = min(int(frames), info_c.frames or 0, n_o) if info_c.frames and info_o.frames else int(frames)
    if n < 1:
        raise EvalError(f"{pair.converted.name} has no frames to compare with {pair.original.name}")
    _say(ctx, f"evaluating {pair.converted.name} against {pair.original.name} ({pair.swap}, faces "
              f"{pair.faces}): up to {n} frames" + (f" from original frame {pair.first}" if pair.first else ""))
    return info_o, n


def _control_video(control: str | None, info_o) -> Path | None:
    """The self-swap control video, checked against the original's size; None without one."""
    from core.media.probe import probe

    if control is None:
        return None
    control_path = Path(control).expanduser().resolve()
    if not control_path.is_file():
        raise EvalError(f"control video {control_path}: no such file")
    info_k = probe(control_path)
    if (info_k.width, info_k.height) != (info_o.width, info_o.height):
        raise EvalError(f"control video {control_path.name} is {info_k.width}×{info_k.height}, the original "
                        f"{info_o.width}×{info_o.height}")
    return control_path


def _pose_errors(into: dict[str, list[float]], lm_o, lm_c, shape, signed: dict | None = None,
                 track: int = 0) -> None:
    """Append the yaw, pitch and roll errors of the output's pose against the original's (and,
    into `signed`, the signed differences under the face's track)."""
    from core.evaluate import quality

    p_o, p_c = quality.head_pose(lm_o, shape), quality.head_pose(lm_c, shape)
    for name, a_o, a_c in zip(("yaw", "pitch", "roll"), p_o, p_c, strict=True):
        into[name].append(quality.angle_error(a_o, a_c))
        if signed is not None:
            signed[name].setdefault(track, []).append(quality.angle_difference(a_c, a_o))


def _pose_offsets(signed: dict[str, dict[int, list[float]]]) -> dict:
    from core.evaluate import quality

    out = {}
    for name, by_track in signed.items():
        out[f"{name}_offset"], out[f"{name}_tracking_error"] = quality.offset_and_tracking(by_track)
    return out


def _pose_means(errors: dict[str, list[float]]) -> dict:
    return {f"{k}_error": _mean(v) for k, v in errors.items()}


def _measure_face(m: _Measures, f, fo, fc, fk, pair: Pair, resolution: int, centroid: dict | None) -> _Face:
    """Every per-face measure of one face of the original against the output (and the control);
    `centroid`: the people's centroids when this frame is one of the identity samples."""
    from core.evaluate import quality
    from core.faces import detect

    box = detect.Detection(*(float(v) for v in f.box), score=0.0)
    lm_o = detect.landmarks(fo.image, box)
    lm_c = detect.landmarks(fc.image, box)
    m.considered += 1
    m.expression.append(expression_error(lm_o, lm_c))
    m.expression_residuals.setdefault(int(f.track), []).append(expression_residual(lm_o, lm_c))
    _pose_errors(m.pose_err, lm_o, lm_c, fo.image.shape, m.pose_signed, int(f.track))
    perfect = quality.round_trip(fo.image, lm_o, resolution)
    for z in m.sizes:
        d_o, d_c = quality.detail_pair(fo.image, fc.image, lm_o, z)
        m.det["in"][z].append(d_o)
        m.det["out"][z].append(d_c)
        m.det["ceiling"][z].append(quality.detail(perfect, lm_o, z))
        if fk is not None:
            m.det["control"][z].append(quality.detail(fk.image, lm_o, z))
    alpha = quality.blend_alpha(lm_o, fo.image.shape, resolution, pair.erode, pair.blur)
    m.seam_out.append(quality.seam_delta_e(fc.image, alpha))
    m.seam_in.append(quality.seam_delta_e(fo.image, alpha))
    if fk is not None:
        m.control_ssim.append(quality.face_ssim(fo.image, fk.image, lm_o, 128))
        lm_k = detect.landmarks(fk.image, box)
        m.control_expression.append(expression_error(lm_o, lm_k))
        _pose_errors(m.pose_control, lm_o, lm_k, fo.image.shape)
    region = detect.detect_in_region(fc.image, box)
    if any(detect.iou(r, box) > 0.3 for r in region):
        m.detected += 1
    if centroid is not None:
        dc = detect.descriptor(fc.image, lm_c)
        do = detect.descriptor(fo.image, lm_o)
        for s in ("a", "b"):
            m.dist["out"][s].append(float(np.linalg.norm(dc - centroid[s])))
            m.dist["in"][s].append(float(np.linalg.norm(do - centroid[s])))
    return _Face(int(f.track), lm_o, lm_c, inter_ocular(lm_o))


def _measure_frames(ctx, pair: Pair, n: int, control_path: Path | None, ref: dict, old: str,
                    sample: set[int], resolution: int, m: _Measures) -> None:
    """The loop: the replaced person's faces found in the original, measured in every frame pair."""
    from core.extract.finder import FindOptions, find_faces
    from core.media import read as media

    centroid = {s: ref[s].mean(axis=0) for s in ("a", "b")}
    opts = FindOptions(video=True, descriptors=pair.faces == "match")
    orig_frames = media.iter_frames(pair.original, start=pair.first, stop=pair.first + n)
    conv_frames = media.iter_frames(pair.converted, stop=n)
    ctrl_frames = iter(media.iter_frames(control_path, stop=n)) if control_path is not None else None
    for (fo, found), fc in zip(find_faces(orig_frames, opts), conv_frames, strict=False):
        fk = next(ctrl_frames, None) if ctrl_frames is not None else None
        i = fo.index - pair.first
        m.count += 1
        if fc.image.shape != fo.image.shape:
            raise EvalError(f"frame {fc.index} of {pair.converted.name} is {fc.image.shape[1]}×{fc.image.shape[0]}, "
                            f"the original's {fo.image.shape[1]}×{fo.image.shape[0]}")
        row: list[_Face] = []
        for f in found:
            if pair.faces == "match":
                d = f.track_descriptor
                if d is None or float(np.linalg.norm(ref[old] - d, axis=1).min()) >= THRESHOLD:
                    m.skipped_other += 1
                    continue
            row.append(_measure_face(m, f, fo, fc, fk, pair, resolution, centroid if i in sample else None))
        m.faces[i] = row
        if ctx is not None:
            ctx.progress(m.count, n, stage="evaluate: faces", unit="frames", info=f"{m.considered} faces")
            ctx.check_cancelled()


def _temporal(faces: dict[int, list[_Face]]) -> dict:
    """Jitter and motion, output and input: the same track in three (two) consecutive frames."""
    j_out, j_in, m_out, m_in = [], [], [], []
    for i in sorted(faces):
        for f in faces[i]:
            prev = next((g for g in faces.get(i - 1, []) if g.track == f.track), None)
            nxt = next((g for g in faces.get(i + 1, []) if g.track == f.track), None)
            if prev is not None:
                m_in.append(motion(prev.original, f.original, f.iod))
                m_out.append(motion(prev.output, f.output, f.iod))
            if prev is None or nxt is None:
                continue
            j_in.append(jitter(prev.original, f.original, nxt.original, f.iod))
            j_out.append(jitter(prev.output, f.output, nxt.output, f.iod))
    jo, ji = _mean(j_out), _mean(j_in)
    mo, mi = _mean(m_out), _mean(m_in)
    return {"points": "17-67", "unit": "% inter-ocular distance", "triples": len(j_out),
            "jitter_output": jo, "jitter_input": ji,
            "ratio": (jo / ji) if jo is not None and ji else None,
            "pairs": len(m_out), "motion_output": mo, "motion_input": mi,
            "motion_ratio": (mo / mi) if mo is not None and mi else None}


def _reconstructions(ctx, project):
    """(the swapper, each side's reconstruction of its held-out faces)."""
    from core.convert.converter import load_swapper
    from core.train import model_io

    if ctx is not None:
        ctx.progress(0, 2, stage="evaluate: reconstruction", unit="sides", force=True)
    swapper = load_swapper(project, warn=None if ctx is None else ctx.warning)
    holdout = model_io.read_holdout(project)
    recon = {}
    for k, s in enumerate(("a", "b")):
        recon[s] = reconstruction(project, swapper, s, holdout.get(s, []))
        if ctx is not None:
            ctx.progress(k + 1, 2, stage="evaluate: reconstruction", unit="sides")
    return swapper, recon


def _sections(m: _Measures, new: str, resolution: int, pair: Pair, control_path: Path | None) -> dict:
    """The identity, expression, pose, detail, seam and control sections of the result."""
    sizes, det, dist = m.sizes, m.det, m.dist
    seam_o, seam_i = _mean(m.seam_out), _mean(m.seam_in)
    offset, tracking = expression_offset_and_tracking(m.expression_residuals)
    return {
        "identity": {
            "threshold": THRESHOLD, "faces": len(dist["out"]["b"]),
            "b_share": _share(dist["out"]["b"]), "a_share": _share(dist["out"]["a"]),
            "b_distance": _mean(dist["out"]["b"]), "a_distance": _mean(dist["out"]["a"]),
            "input_b_share": _share(dist["in"]["b"]), "input_a_share": _share(dist["in"]["a"]),
            "detected_share": m.detected / m.considered, "new_side": new,
        },
        "expression": {"points": "17-67", "unit": "% inter-ocular distance", "faces": len(m.expression),
                       **_stats(m.expression), "offset": offset, "tracking_error": tracking},
        "temporal": _temporal(m.faces),
        "pose": {"unit": "degrees", "faces": len(m.pose_err["yaw"]), "method": "solvePnP, generic 3-D face",
                 **_pose_means(m.pose_err),
                 **{f"{k}_error_p90": _stats(v)["p90"] for k, v in m.pose_err.items()},
                 **_pose_offsets(m.pose_signed)},
        "detail": {"measure": "variance of the Laplacian, inner face (17-67), head crop of coverage 2.0",
                   "faces": len(det["in"][sizes[0]]), "model_resolution": resolution,
                   **{str(z): {"ratio": _ratio(det["out"][z], det["in"][z]),
                               "ceiling": _ratio(det["ceiling"][z], det["in"][z]),
                               "output": _mean(det["out"][z]), "input": _mean(det["in"][z])} for z in sizes}},
        "seam": {"unit": "ΔE (CIE76)", "faces": len(m.seam_out), "delta_e_output": seam_o,
                 "delta_e_input": seam_i,
                 "excess": (seam_o - seam_i) if seam_o is not None and seam_i is not None else None,
                 "erode": pair.erode, "blur": pair.blur},
        "control": None if control_path is None else {
            "video": str(control_path), "faces": len(m.control_ssim), "ssim": _mean(m.control_ssim),
            "pose": _pose_means(m.pose_control), "expression": _mean(m.control_expression),
            "detail": {str(z): _ratio(det["control"][z], det["in"][z]) for z in sizes}},
    }


def evaluate(project, input: str, original: str | None = None, frames: int = DEFAULT_FRAMES,
             identity_faces: int = DEFAULT_IDENTITY_FACES, control: str | None = None, ctx=None) -> dict:
    """Every metric of the module notes for one converted video; returns the result dict.
    `control`: a self-swap conversion of the same original (same first frame), measured too."""
    from core.convert.plan import replaced_side
    from core.evaluate import quality
    from core.train import model_io

    t_start = time.monotonic()
    if int(frames) < 3:
        raise EvalError(f"--frames must be at least 3 (jitter needs three consecutive frames), not {frames}")
    if int(identity_faces) < 1:
        raise EvalError(f"--identity-faces must be at least 1, not {identity_faces}")
    pair = find_pair(project, input, original)
    old = replaced_side(pair.swap)
    new = "b" if old == "a" else "a"
    info_o, n = _frames_compared(pair, frames, ctx)
    control_path = _control_video(control, info_o)
    status = model_io.read_status(project) or {}
    resolution = int(status.get("resolution") or 64)
    ref = {s: references(project, s) for s in ("a", "b")}
    sample = set(np.linspace(0, n - 1, min(int(identity_faces), n)).round().astype(int).tolist())
    m = _Measures(quality.DETAIL_SIZES)
    _measure_frames(ctx, pair, n, control_path, ref, old, sample, resolution, m)
    if m.considered == 0:
        who = f"{project.label(old)} (side {old})" if pair.faces == "match" else "anyone"
        raise EvalError(f"no face of {who} found in the {m.count} frames of {pair.original.name} compared: "
                        f"nothing to evaluate" + (f" ({m.skipped_other} faces of other people)" if m.skipped_other else ""))
    swapper, recon = _reconstructions(ctx, project)
    return {
        "input": str(pair.converted), "original": str(pair.original), "first_frame": pair.first,
        "swap": pair.swap, "faces_mode": pair.faces, "convert_job": pair.job, "project": project.name,
        "model": {"preset": swapper.preset, "step": swapper.step, "resolution": swapper.resolution},
        "frames": m.count, "faces": m.considered,
        **_sections(m, new, resolution, pair, control_path),
        "reconstruction": recon,
        "seconds": round(time.monotonic() - t_start, 2),
    }


def run_job(ctx, input: str, original: str | None = None, frames: int = DEFAULT_FRAMES,
            identity_faces: int = DEFAULT_IDENTITY_FACES, control: str | None = None) -> dict:
    """The `eval` job kind: `evaluate`, its result also emitted as a `summary` event."""
    result = evaluate(ctx.project, input, original=original, frames=frames, identity_faces=identity_faces,
                      control=control, ctx=ctx)
    ctx.emit("summary", **result)
    ident = result["identity"]
    ctx.message(f"identity: {_pct(ident['b_share'])} of swapped faces read as {ctx.project.label('b')}, "
                f"{_pct(ident['a_share'])} still as {ctx.project.label('a')}; expression error "
                f"{_num(result['expression']['mean'])} % IOD; jitter ×{_num(result['temporal']['ratio'])} "
                f"the original's")
    return result


def _say(ctx, text: str) -> None:
    if ctx is not None:
        ctx.message(text)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _num(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _angles(p: dict, what: str = "error") -> str:
    return " / ".join(_num(p.get(f"{k}_{what}"), 1) for k in ("yaw", "pitch", "roll"))


def table_rows(result: dict) -> list[tuple[str, str, str]]:
    """(section, metric, value) rows for a printed table (the CLI and the TUI share the wording)."""
    i, e, t, r = result["identity"], result["expression"], result["temporal"], result["reconstruction"]
    rows = [
        ("identity", f"swapped faces within {i['threshold']} of B's centroid", _pct(i["b_share"])),
        ("identity", f"swapped faces still within {i['threshold']} of A's centroid", _pct(i["a_share"])),
        ("identity", "mean distance to B / A", f"{_num(i['b_distance'], 3)} / {_num(i['a_distance'], 3)}"),
        ("identity", "original faces within 0.6 of A / B", f"{_pct(i['input_a_share'])} / {_pct(i['input_b_share'])}"),
        ("identity", "swapped faces HOG still detects", _pct(i["detected_share"])),
        ("expression", "landmark error 17–67, % IOD (mean / median / p90)",
         f"{_num(e['mean'])} / {_num(e['median'])} / {_num(e['p90'])}"),
        *([("expression", "of it: following A's expression (tracking) / the new face's proportions (offset), % IOD",
            f"{_num(e['tracking_error'])} / {_num(e['offset'])}")] if e.get("tracking_error") is not None else []),
        ("temporal", "jitter output / input, % IOD", f"{_num(t['jitter_output'])} / {_num(t['jitter_input'])}"),
        ("temporal", "jitter ratio (1 = as steady as the original)", _num(t["ratio"])),
        ("temporal", "frame-to-frame motion ratio", _num(t.get("motion_ratio"))),
    ]
    p, d, sm = result.get("pose"), result.get("detail"), result.get("seam")
    if p:
        rows.append(("pose", "yaw / pitch / roll error, degrees (mean)",
                     _angles(p)))
        if "pitch_tracking_error" in p:
            rows.append(("pose", "yaw / pitch / roll error once each track's offset is removed, degrees",
                         _angles(p, "tracking_error")))
            rows.append(("pose", "yaw / pitch / roll offset (output − original, the new face's proportions)",
                         _angles(p, "offset")))
    if d:
        for z in ("64", "128"):
            if z in d:
                rows.append(("detail", f"at {z} px, output ÷ original (perfect {d['model_resolution']} px model)",
                             f"{_pct(d[z]['ratio'])} ({_pct(d[z]['ceiling'])})"))
    if sm:
        rows.append(("seam", "ΔE across the blend edge, output / original",
                     f"{_num(sm['delta_e_output'], 1)} / {_num(sm['delta_e_input'], 1)}"))
    c = result.get("control")
    if c:
        rows.append(("control", f"self-swap A→A: face SSIM ({c['faces']} faces)", _num(c["ssim"], 3)))
        if c.get("expression") is not None:
            rows.append(("control", "self-swap A→A: expression error, % IOD", _num(c["expression"])))
        if c.get("pose"):
            rows.append(("control", "self-swap A→A: yaw / pitch / roll error, degrees", _angles(c["pose"])))
        rows.append(("control", "self-swap A→A: detail at 64 / 128 px",
                     f"{_pct(c['detail'].get('64'))} / {_pct(c['detail'].get('128'))}"))
    for s in ("a", "b"):
        x = r[s]
        rows.append(("reconstruction", f"{s.upper()}→{s.upper()} held-out SSIM / PSNR ({x['faces']} faces)",
                     f"{_num(x['ssim'], 3)} / {_num(x['psnr_db'], 1)} dB"))
        rows.append(("reconstruction", f"{s.upper()}→{s.upper()} training SSIM / PSNR ({x['train_faces']} faces)",
                     f"{_num(x['train_ssim'], 3)} / {_num(x['train_psnr_db'], 1)} dB"))
    return rows
