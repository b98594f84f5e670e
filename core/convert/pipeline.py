"""Conversion: put B's generated face on A in every frame of a video (or image, or folder of images).

    decode → find faces → identity match → swap (batched, on the device) → merge → label → encode

Each arrow is a bounded queue and each stage runs in its own thread (core.convert.converter), so the
slowest stage sets the pace. Faces come from the project's alignments store when the input is an
extracted source of the project (every frame processed), else they are detected on the fly with the
extraction pipeline's face finder (core.convert.sources). With `faces="match"` only faces whose
dlib descriptor matches the replaced side's person are swapped (core.convert.identity), decided
once per track in a video, so other people in the frame are left alone.

Every output is labelled as synthetic (core.media.label): container metadata always, the visible mark
unless `label=False`, and a C2PA manifest when c2pa can sign the format (a failure there is reported
and the other two labels stay). Outputs are written under a temporary name and renamed when
complete (core.convert.sinks, core.media.write).

This module is the job: `convert` plans (core.convert.plan: every check before any work), opens the
sink, runs the converter and finishes (where the input broke, the labels, the summary). Job kinds:
`convert` (`run_job`) and `preview` (`run_preview_job`: one frame converted, side by side with the
original, for tuning the options).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.convert.converter import DEFAULT_BATCH, Converter, Counters, Pipeline, make_converter
from core.convert.merge import MergeOptions
from core.convert.plan import (
    FACE_MODES,
    ConvertError,
    c2pa_note,
    c2pa_possible,
    check_direction,
    check_output,
    input_kind,
    merge_options,
    parse_time,
    replaced_side,
    resolve_output,
)
from core.convert.sinks import FolderSink, ImageSink, VideoSink, sign_hooks
from core.convert.sources import (
    FrameWork,
    TrackBreak,
    frames_detected,
    frames_from_store,
    store_faces,
    store_for_input,
    track_descriptors,
)
from core.media import label as labels
from core.media.probe import MediaInfo
from core.system.clock import now_iso

# ---- the job ---------------------------------------------------------------------------------------

def run_job(ctx, input: str, output: str | None = None, start=None, end=None, swap: str = "a-to-b",
            faces: str = "match", mask: str = "hull", erode: int | None = None, blur: int | None = None,
            color: str = "reinhard", blend: str = "feather", sharpen: float = 0.0, crf: int = 18,
            label: bool = True, batch: int = DEFAULT_BATCH, detector: str = "hog",
            workers: int | None = None, overwrite: bool = False, engine: str = "jax", weights: str = "ema") -> dict:
    """The `convert` job kind (arguments as `facepair convert` takes them; see docs/conversion.md)."""
    return convert(ctx.project, input, output=output, start=start, end=end, swap=swap, faces=faces, mask=mask,
                   erode=erode, blur=blur, color=color, blend=blend, sharpen=sharpen, crf=crf, label=label,
                   batch=batch, detector=detector, workers=workers, ctx=ctx, overwrite=overwrite, engine=engine,
                   weights=weights)


class _Quiet:
    """A stand-in job context for direct calls (benchmarks, scripts): records messages, no events."""

    def __init__(self, project):
        self.project = project
        self.messages: list[tuple[str, str]] = []
        self.cancelled = False

    def progress(self, *a, **k) -> None:
        pass

    def message(self, text: str, level: str = "info") -> None:
        self.messages.append((level, text))

    def warning(self, text: str) -> None:
        self.message(text, "warning")

    def emit(self, type: str, **fields) -> None:
        pass

    def check_cancelled(self) -> None:
        pass


@dataclass
class Plan:
    """What `convert` will do, from its arguments, all checked before any work."""

    in_path: Path
    kind: str  # video | image | folder
    info: MediaInfo
    out_path: Path
    direction: str
    options: MergeOptions
    fps: float
    first: int = 0  # the first frame converted
    stop: int | None = None  # the frame after the last one (None: to the end)
    total: int | None = None  # frames to convert, when the input says


def plan_conversion(project, input: str, output: str | None, start, end, swap: str, faces: str, mask: str,
                    erode: int | None, blur: int | None, color: str, blend: str, sharpen: float, crf: int,
                    overwrite: bool) -> Plan:
    """Every check of `convert`'s arguments, the input and the output, and the frames to convert."""
    from core.media.probe import probe

    direction = check_direction(swap)
    if faces not in FACE_MODES:
        raise ConvertError(f"--faces must be one of {', '.join(FACE_MODES)}, not {faces!r}")
    options = merge_options(mask, erode, blur, color, blend, sharpen)
    if not 0 <= int(crf) <= 51:
        raise ConvertError(f"--crf must be 0–51 (lower is better quality), not {crf}")
    in_path = Path(input).expanduser().resolve()
    kind = input_kind(in_path)
    info = probe(in_path)
    out_path = resolve_output(project, in_path, kind, direction, output, overwrite)  # fails before any work
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ConvertError(f"--end ({end}) must be after --start ({start})")
    if kind != "video" and (t0 or t1 is not None):
        raise ConvertError("--start/--end apply to a video input, not to images")
    plan = Plan(in_path, kind, info, out_path, direction, options, fps=info.fps or 25.0)
    if kind == "video":
        plan.first = int(round((t0 or 0.0) * plan.fps))
        plan.stop = int(round(t1 * plan.fps)) if t1 is not None else None
    if info.frames is not None:
        plan.total = (min(plan.stop, info.frames) if plan.stop is not None else info.frames) - plan.first
    return plan


def check_start(plan: Plan, start) -> None:
    """ConvertError when `--start` is past the end of the video."""
    frames = plan.info.frames
    if plan.kind == "video" and frames is not None and plan.first >= frames:
        raise ConvertError(f"--start {start} is past the end of {plan.in_path.name} ({frames} frames, "
                           f"{frames / plan.fps:.2f} s)")


def _announce(ctx, project, plan: Plan, swapper, faces: str, label: bool) -> None:
    """What is converted with which model, and which labels the output gets."""
    side = replaced_side(plan.direction)
    ctx.message(f"converting {plan.in_path.name} ({plan.kind}) {plan.direction}: {project.label(side)} → "
                f"{project.label('b' if side == 'a' else 'a')}, faces {faces}, model {getattr(swapper, 'preset', '?')} "
                f"step {getattr(swapper, 'step', '?')} ({getattr(swapper, 'engine', 'jax')}"
                + (", the moving average of its weights" if getattr(swapper, "weights", "") == "ema" else "") + ")")
    ctx.message("visible 'AI-generated' label: " + ("on" if label else "OFF (--no-label); "
                + ("metadata and C2PA labels stay" if c2pa_possible(plan.out_path, plan.kind) else
                   "the metadata label stays (no C2PA for this format)")),
                level="info" if label else "warning")
    if not c2pa_possible(plan.out_path, plan.kind):
        ctx.warning(c2pa_note(plan.out_path, label))


def _frames(ctx, project, plan: Plan, conv: Converter, detector: str, workers: int | None):
    """(the frames with the faces to swap, the alignments store used or None, why not): from the
    store when the input is an extracted source it describes, else detected on the fly."""
    from core.media import read as media

    raw = media.iter_frames(plan.in_path, start=plan.first, stop=plan.stop,
                            on_error=lambda i, n, msg: ctx.warning(f"skipped {n}: {msg}"))
    guarded = TrackBreak(raw, conv.counters)
    in_path, kind = plan.in_path, plan.kind
    a, why = store_for_input(project, in_path, plan.first, plan.stop, plan.info.frames) if kind == "video" else (None, None)
    if a is not None:
        ctx.message(f"faces from the alignments store of this extracted source ({len(a)} faces)")
        frames = frames_from_store(guarded, a)
    else:
        if why and why.startswith("changed"):
            ctx.warning(f"{in_path.name} {why}: its stored alignments describe another file, so they are not used; "
                        f"faces are detected on the fly (run `facepair extract {project.name}` to extract it again)")
        ctx.message("detecting faces on the fly" + (" (tracked, smoothed landmarks)" if kind == "video" else ""))
        if workers is None:  # a process pool costs seconds to start: only for inputs that repay it
            from core.extract import finder as extract

            enough = extract.POOL_MIN_FRAMES if kind == "video" else extract.POOL_MIN_IMAGES
            workers = extract.default_workers() if (plan.total or 0) >= enough else 1
        frames = frames_detected(guarded, video=kind == "video", detector=detector, descriptors=conv.matcher is not None,
                                 workers=workers)
    return (conv.select(fr, fr.faces) for fr in frames), a, why


def _signer(project, out_path: Path, created: str):
    """Signs a finished output with the project's C2PA manifest; the reason when it cannot."""
    def sign(p: Path) -> str | None:
        return labels.embed_c2pa(p, project.home, project.name, created, title=out_path.name)
    return sign


def _open_sink(project, plan: Plan, crf: int, created: str):
    """The output the converted frames go to, labelled: a video, one still or a folder of stills."""
    meta = labels.metadata(project.name, created)
    sign = _signer(project, plan.out_path, created)
    if plan.kind == "video":
        return VideoSink(plan.out_path, plan.in_path, plan.info, plan.fps, plan.first, plan.stop, crf, meta, sign)
    if plan.kind == "image":
        return ImageSink(plan.out_path, meta, sign)
    return FolderSink(plan.out_path, meta, sign)


def _ticker(ctx, conv: Converter, total: int | None, t_start: float):
    """The progress callback of the loop: at most four reports a second."""
    last = {"t": 0.0}

    def tick() -> None:
        now = time.monotonic()
        if now - last["t"] < 0.25:
            return
        last["t"] = now
        done = conv.counters.frames_out
        elapsed = now - t_start
        rate = done / elapsed if elapsed > 0 else None
        eta = (total - done) / rate if rate and total else None
        ctx.progress(done, total, stage="convert", fps=rate, eta_s=eta, unit="frames",
                     info=f"{conv.counters.faces_swapped} faces swapped")
    return tick


def _run(ctx, conv: Converter, frames, sink, plan: Plan, t_start: float) -> Pipeline:
    """The loop: every frame through the converter into the sink; the sink is aborted (nothing
    left behind) when the run fails, is cancelled, or decodes no frame."""
    cancelled = lambda: bool(getattr(ctx, "cancelled", False))  # noqa: E731
    try:
        pipeline = conv.run(frames, sink, on_tick=_ticker(ctx, conv, plan.total, t_start), cancelled=cancelled)
    except BaseException:
        sink.abort()
        raise
    if conv.counters.frames_out == 0:
        sink.abort()
        raise ConvertError(f"no frame of {plan.in_path} could be decoded; nothing was written")
    return pipeline


def _note_break(ctx, c: Counters, plan: Plan) -> None:
    """Where the input broke, if it did (a decoding error, or a video that ends early)."""
    if c.broken_at is None and plan.kind == "video" and plan.total is not None and c.frames_out < plan.total:
        c.broken_at = plan.first + c.frames_out
        c.broken_reason = "the video ends early (truncated or corrupt)"
    if c.broken_at is not None:
        at = c.broken_at / plan.fps
        ctx.warning(f"the input broke at frame {c.broken_at} ({at:.2f} s): {c.broken_reason}; converted the "
                    f"{c.frames_out} frames before it")


def _close(ctx, sink, c: Counters, label: bool) -> tuple[Path, str | None]:
    """(the finished output, why it has no C2PA manifest or None)."""
    result_path = sink.close(cut=c.broken_at is not None)
    c2pa_reason = sink.c2pa_failures[0] if sink.c2pa_failures else None
    if c2pa_reason:
        ctx.warning(f"C2PA manifest not added ({c2pa_reason}); the output still carries the metadata label"
                    + (" and the visible label" if label else ""))
    return result_path, c2pa_reason


def _warn_unswapped(ctx, project, c: Counters, side: str) -> None:
    if c.faces_swapped == 0:
        if c.faces_found == 0:
            ctx.warning(f"no faces found in {c.frames_out} frames: the output is the input re-encoded "
                        f"(with its labels)")
        else:
            ctx.warning(f"found {c.faces_found} faces in {c.frames_out} frames but none is "
                        f"{project.label(side)} (--faces match): the output is the input re-encoded; "
                        f"use --faces all to swap every face")


def _result(plan: Plan, c: Counters, pipeline: Pipeline, result_path: Path, from_store: bool, why: str | None,
            label: bool, c2pa_reason: str | None, faces: str, elapsed: float) -> dict:
    stage_fps = {k: (c.frames_out / v if v > 0 else None) for k, v in pipeline.busy.items()}
    return {
        "output": str(result_path), "kind": plan.kind, "frames": c.frames_out, "frames_total": plan.total,
        "frames_swapped": c.frames_swapped, "faces_found": c.faces_found, "faces_swapped": c.faces_swapped,
        "faces_other": c.faces_other, "faces_source": "alignments" if from_store else "detected",
        "source_changed": bool(why and why.startswith("changed")),
        "input_broken_at": c.broken_at, "visible_label": bool(label), "metadata_label": True,
        "c2pa": c2pa_reason is None, "c2pa_error": c2pa_reason, "seconds": round(elapsed, 3),
        "fps": round(c.frames_out / elapsed, 2) if elapsed > 0 else None,
        "stage_fps": {k: (round(v, 1) if v else None) for k, v in stage_fps.items()},
        "swap": plan.direction, "faces": faces,
    }


def convert(project, input: str, output: str | None = None, start=None, end=None, swap: str = "a-to-b",
            faces: str = "match", mask: str = "hull", erode: int | None = None, blur: int | None = None,
            color: str = "reinhard", blend: str = "feather", sharpen: float = 0.0, crf: int = 18,
            label: bool = True, batch: int = DEFAULT_BATCH, detector: str = "hog", workers: int | None = None,
            ctx=None, swapper=None, overwrite: bool = False, engine: str = "jax", weights: str = "ema") -> dict:
    """Convert `input` (video, image or folder) and return the job's result (see run_job)."""
    ctx = ctx or _Quiet(project)
    t_start = time.monotonic()
    plan = plan_conversion(project, input, output, start, end, swap, faces, mask, erode, blur, color, blend,
                           sharpen, crf, overwrite)
    conv = make_converter(project, plan.direction, plan.options, faces, label, swapper, batch=batch, warn=ctx.warning,
                          engine=engine, weights=weights)
    conv.size_queues(plan.info.width * plan.info.height * 3)
    created = now_iso()
    _announce(ctx, project, plan, conv.swapper, faces, label)
    check_start(plan, start)
    frames, a, why = _frames(ctx, project, plan, conv, detector, workers)
    sink = _open_sink(project, plan, crf, created)
    pipeline = _run(ctx, conv, frames, sink, plan, t_start)
    c = conv.counters
    _note_break(ctx, c, plan)
    result_path, c2pa_reason = _close(ctx, sink, c, label)
    _warn_unswapped(ctx, project, c, replaced_side(plan.direction))
    elapsed = time.monotonic() - t_start
    result = _result(plan, c, pipeline, result_path, a is not None, why, label, c2pa_reason, faces, elapsed)
    ctx.progress(c.frames_out, c.frames_out, stage="convert", fps=result["fps"], unit="frames",
                 info=f"{c.faces_swapped} faces swapped", force=True)
    ctx.emit("summary", **{k: v for k, v in result.items() if k != "stage_fps"}, stage_fps=result["stage_fps"])
    ctx.message(f"wrote {result_path} ({c.frames_out} frames, {c.faces_swapped} faces swapped in "
                f"{c.frames_swapped} frames, {elapsed:.1f} s)")
    return result


# ---- preview ---------------------------------------------------------------------------------------

def run_preview_job(ctx, input: str, frame: int = 0, output: str | None = None, swap: str = "a-to-b",
                    faces: str = "match", mask: str = "hull", erode: int | None = None, blur: int | None = None,
                    color: str = "reinhard", blend: str = "feather", sharpen: float = 0.0, label: bool = True,
                    detector: str = "hog") -> dict:
    """The `preview` job kind: frame N converted, side by side with the original, as a PNG."""
    return preview(ctx.project, input, frame=frame, output=output, swap=swap, faces=faces, mask=mask, erode=erode,
                   blur=blur, color=color, blend=blend, sharpen=sharpen, label=label, detector=detector, ctx=ctx)


def _preview_output(ctx, project, in_path: Path, n: int, output: str | None) -> Path:
    """The preview's PNG/JPEG: `output` (never over a source), else one in the job's folder."""
    from core.media import write as video_out

    if output:
        out_path = Path(output).expanduser().resolve()
        if out_path.suffix.lower() not in video_out.IMAGE_FORMATS:
            raise ConvertError(f"preview output {out_path} must be a .png or .jpg")
        check_output(project, out_path, overwrite=True)  # never over a source
    else:
        out_path = Path(getattr(ctx, "dir", project.output_dir)) / f"preview-{in_path.stem}-{n:06d}.png"
    video_out.check_writable(out_path)
    return out_path


def _preview_faces(ctx, project, conv: Converter, fr, in_path: Path, kind: str, n: int, detector: str) -> FrameWork:
    """Frame `n` with the faces to swap: from the alignments store when it describes the input."""
    a, why = store_for_input(project, in_path, n, n + 1) if kind == "video" else (None, None)
    if why and why.startswith("changed"):
        ctx.warning(f"{in_path.name} {why}: its stored alignments are not used; faces are detected on the fly "
                    f"(run `facepair extract {project.name}` to extract it again)")
    if a is not None:
        work = FrameWork(fr.index, fr.image, fr.name, faces=store_faces(a, n, track_descriptors(a)))
    else:
        work = next(frames_detected([fr], video=False, detector=detector, descriptors=conv.matcher is not None,
                                    workers=1))
    return conv.select(work, work.faces)


def _write_preview(project, out_path: Path, image: np.ndarray) -> str | None:
    """Write the labelled, signed preview; why it has no C2PA manifest, or None."""
    from core.media import write as video_out

    created = now_iso()
    failures: list[str] = []
    video_out.write_image(out_path, image, labels.metadata(project.name, created),
                          before_rename=sign_hooks(_signer(project, out_path, created), failures))
    return failures[0] if failures else None


def preview(project, input: str, frame: int = 0, output: str | None = None, swap: str = "a-to-b",
            faces: str = "match", mask: str = "hull", erode: int | None = None, blur: int | None = None,
            color: str = "reinhard", blend: str = "feather", sharpen: float = 0.0, label: bool = True,
            detector: str = "hog", ctx=None, swapper=None) -> dict:
    """Convert frame `frame` of `input` and write it beside the original (see run_preview_job)."""
    from core.media import read as media
    from core.media.probe import probe

    ctx = ctx or _Quiet(project)
    direction = check_direction(swap)
    if faces not in FACE_MODES:
        raise ConvertError(f"--faces must be one of {', '.join(FACE_MODES)}, not {faces!r}")
    options = merge_options(mask, erode, blur, color, blend, sharpen)
    in_path = Path(input).expanduser().resolve()
    kind = input_kind(in_path)
    info = probe(in_path)
    n = int(frame)
    if n < 0 or (info.frames is not None and n >= info.frames):
        raise ConvertError(f"--frame {n} is out of range: {in_path.name} has {info.frames} frames (0–{(info.frames or 1) - 1})")
    out_path = _preview_output(ctx, project, in_path, n, output)
    side = replaced_side(direction)
    conv = make_converter(project, direction, options, faces, label, swapper, warn=ctx.warning)
    fr = next(iter(media.iter_frames(in_path, start=n, stop=n + 1)), None)
    if fr is None:
        raise ConvertError(f"frame {n} of {in_path} could not be decoded")
    work = _preview_faces(ctx, project, conv, fr, in_path, kind, n, detector)
    conv.swap([work])
    reason = _write_preview(project, out_path, np.concatenate([fr.image, conv.merge(work)], axis=1))
    if reason:
        ctx.warning(f"C2PA manifest not added to the preview ({reason})")
    if work.found == 0:
        ctx.warning(f"no face found in frame {n}: the right half is the frame unchanged")
    elif not work.faces:
        ctx.warning(f"frame {n} has {work.found} faces but none is {project.label(side)} (--faces match)")
    ctx.progress(1, 1, stage="preview", unit="frames", info=f"{len(work.faces)} faces swapped", force=True)
    ctx.emit("preview", step=getattr(conv.swapper, "step", None), path=str(out_path), frame=n)
    return {"output": str(out_path), "frame": n, "faces_found": work.found, "faces_swapped": len(work.faces),
            "faces_other": work.other, "visible_label": bool(label), "c2pa": reason is None}
