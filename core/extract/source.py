"""Extracting one source: its store checked against the file and the settings, resumed where a
previous run stopped, every frame's faces found (core.extract.finder), filtered (size, blur,
identity), their crops written to faces/SIDE and their records to the alignments store (one atomic
part every few seconds); a video marked complete, or partial when it decodes short.

Resume: frames already in a source's store are skipped; crops of frames not in the store (written
by a run that was killed before its next store part) are deleted and redone, so nothing is
duplicated. Changing crop settings (size, coverage, every) re-extracts that source from scratch.

May import core.extract.{finder,identity}, core.faces, core.media, core.project and core.system.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FacepairError, JobCancelled
from core.extract import options
from core.extract.finder import (
    DETECT_EVERY,
    POOL_MIN_FRAMES,
    POOL_MIN_IMAGES,
    SEGMENT,
    FacePool,
    FindOptions,
    find_faces,
)
from core.extract.identity import Identity
from core.faces import align, detect
from core.faces import alignments as store
from core.media import read as media
from core.media.probe import probe
from core.system.atomic import atomic_write_json

BLUR_THRESHOLD = options.BLUR_DEFAULT
FLUSH_SECONDS = 5.0
COMPLETE = "complete.json"  # in a video's store: every frame was processed (core.media.fingerprint.COMPLETE)
CROP_SETTINGS = ("size", "coverage", "center", "every")


@dataclass
class SideSummary:
    side: str
    sources: int = 0
    frames: int = 0
    frames_with_faces: int = 0
    faces_found: int = 0
    faces_kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {"small": 0, "blurry": 0, "identity": 0})
    corrupt: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    empty_sources: list[str] = field(default_factory=list)
    workers: int = 1  # the most worker processes a source of this side used
    new_frames: int = 0  # frames processed by this run (the totals above are the stores')
    already_extracted: list[str] = field(default_factory=list)  # sources with nothing left to do
    changed: list[str] = field(default_factory=list)  # sources re-extracted because their file changed
    partial: list[dict] = field(default_factory=list)  # {path, decoded, expected}: fewer frames than the container

    def add_store(self, a: store.Alignments) -> None:
        """Add one source's totals, as its store holds them (earlier runs included)."""
        self.frames += len(a.frames)
        self.frames_with_faces += len(np.unique(a.face_frame))
        self.faces_found += len(a)
        counts = a.counts()
        self.faces_kept += counts.pop("kept", 0)
        for k, v in counts.items():
            self.dropped[k] = self.dropped.get(k, 0) + v

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["empty"] = self.faces_found == 0
        return d


@dataclass
class ExtractSettings:
    size: int = 256
    coverage: float = align.COVERAGE
    center: tuple[float, float] = align.CENTER
    every: int = 1
    detector: str = "hog"
    min_face: int | None = None
    blur: float = BLUR_THRESHOLD
    identity: bool = True
    identity_threshold: float = detect.IDENTITY_THRESHOLD
    smooth: bool = True
    detect_every: int = DETECT_EVERY

    def for_store(self) -> dict:
        d = dict(self.__dict__)
        d["center"] = list(self.center)
        return d

    def find_options(self, video: bool) -> FindOptions:
        return FindOptions(detector=self.detector, min_face=self.min_face, detect_every=self.detect_every,
                           smooth=self.smooth, video=video, descriptors=self.identity, crop_size=self.size,
                           coverage=self.coverage, center=tuple(self.center), drop_small=True,
                           drop_blur=self.blur)


def _remove_unrecorded_crops(project, side: str, source_id: str, done: np.ndarray) -> int:
    """Crops of this source whose frame is not in the store: left by a killed run; delete them."""
    removed = 0
    done_set = set(done.tolist())
    d = project.faces_dir(side)
    for p in d.glob(f"{source_id}_*.png"):
        parsed = store.parse_crop_name(p.name)
        if parsed and parsed[0] == source_id and parsed[1] not in done_set:
            p.unlink(missing_ok=True)
            removed += 1
    for p in d.glob(f".{source_id}_*.tmp"):
        p.unlink(missing_ok=True)
    return removed


def remove_source_output(project, side: str, source_id: str) -> None:
    """A source's store and crops gone: it is extracted again from the start."""
    store.remove(project, source_id)
    for p in project.faces_dir(side).glob(f"{source_id}_*.png"):
        p.unlink(missing_ok=True)


def write_crop(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Progress:
    """The job's progress over every source: frames done of the total, faces found."""

    def __init__(self, ctx, total: int | None):
        self.ctx, self.total, self.done = ctx, total, 0
        self.t0 = time.monotonic()
        self.faces = 0

    def step(self, stage: str, n: int = 1, force: bool = False) -> None:
        self.done += n
        if self.ctx is None:
            return
        dt = time.monotonic() - self.t0
        self.ctx.progress(self.done, self.total, stage=stage, fps=self.done / dt if dt > 0 else None,
                          unit="frames", info=f"{self.faces} faces", force=force)


class Pools:
    """One worker pool for a whole job, started by the first source long enough to need it."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool: FacePool | None = None

    def get(self, opts: FindOptions) -> FacePool | int:
        if self.workers <= 1:
            return 1
        if self.pool is None:
            self.pool = FacePool(self.workers, opts.detector, opts.descriptors)
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close(cancel=True)
            self.pool = None


def note(ctx, text: str, level: str = "info") -> None:
    """A message to the job, when there is one (`extract` runs without a job too)."""
    if ctx is not None:
        ctx.message(text, level)


def _check_store(ctx, project, source, path: Path, want: dict, current, summary: SideSummary):
    """Drop a store that describes another file or other crop settings (re-extracted from the
    start), record the fingerprint of an older store of this very file, and bring project.toml's
    record up to date before a new store is started; returns the (maybe refreshed) source."""
    from core.faces import sources as source_store
    from core.media import fingerprint
    from core.project import projects

    side, sid = source.side, source.id
    spath = store.store_path(project, sid)
    if store.store_exists(project, sid):
        check = fingerprint.compare(source_store.store_record(project, source), current)
        if check.changed:
            note(ctx, f"{path.name}: the file changed since it was extracted ({check.why}); its alignments and "
                      f"faces describe another file: re-extracting it from the start", "warning")
            summary.changed.append(str(path))
            remove_source_output(project, side, sid)
        elif current is not None and "fingerprint" not in (store.read_meta(spath).get("source") or {}):
            # A store from before fingerprints, of this very file: record what it describes.
            meta = store.read_meta(spath)
            meta["source"] = {**(meta.get("source") or {}), "fingerprint": current}
            atomic_write_json(spath / store.META, meta)
    if store.store_exists(project, sid):
        old = store.read_meta(spath).get("settings", {})
        changed = [k for k in CROP_SETTINGS if old.get(k) != want.get(k)]
        if changed:
            note(ctx, f"{path.name}: settings changed ({', '.join(f'{k} {old.get(k)}→{want.get(k)}' for k in changed)}); "
                      "re-extracting it from the start")
            remove_source_output(project, side, sid)
    if not store.store_exists(project, sid) and current is not None and \
            fingerprint.compare(fingerprint.recorded_for(source), current).state != "same":
        try:  # project.toml describes the file as it is now (what `facepair show` compares)
            source = projects.refresh_source(project, source)
        except (FacepairError, OSError) as e:
            note(ctx, f"{path.name}: could not update its record in project.toml ({e})", "warning")
    return source


def _resume(ctx, project, side: str, sid: str, path: Path, previous: store.Alignments, progress: Progress) -> None:
    """Clear the crops a killed run left without a store record and count the frames already done."""
    done = previous.frames
    if len(done):
        removed = _remove_unrecorded_crops(project, side, sid, done)
        note(ctx, f"{path.name}: resuming; {len(done)} frames already done"
                  + (f", {removed} unrecorded crops redone" if removed else ""))
        progress.step("resuming", n=len(done))
    else:
        _remove_unrecorded_crops(project, side, sid, done)


def _first_frame(info, every: int, done_set: set[int], is_video: bool) -> int:
    """Where decoding starts: after the prefix of done frames a resumed video has."""
    if is_video and done_set:
        wanted = range(0, info.frames or 0, every)
        return next((f for f in wanted if f not in done_set), 0) if info.frames else 0
    return 0


def _pool_and_segment(pools: Pools, opts: FindOptions, todo: int, is_video: bool, summary: SideSummary,
                      pool_min_frames: int | None) -> tuple[FacePool | int, int]:
    """The worker pool for a source (none for a short one) and the frames a worker gets at a time."""
    # A process pool costs seconds to start (the fork server loads the dlib models): short
    # sources run in this process, where that cost would not pay off.
    per_segment = SEGMENT if is_video else 16
    if pool_min_frames is None:
        pool_min_frames = POOL_MIN_FRAMES if is_video else POOL_MIN_IMAGES
    pool = pools.get(opts) if todo >= pool_min_frames else 1
    workers = pool.workers if isinstance(pool, FacePool) else 1
    summary.workers = max(summary.workers, workers)
    # Segments small enough that every worker gets several (balance), large enough to amortise
    # their context frames and per-track descriptors.
    segment = max(24 if is_video else 4, min(per_segment, todo // (3 * workers) if todo else per_segment))
    return pool, segment


def _records(faces, frame_index: int, sid: str, where: str, settings: ExtractSettings, identity: Identity | None,
             faces_dir: Path) -> list[store.Face]:
    """One frame's faces as store records, filtered by identity; each kept face's crop written."""
    records = []
    for i, f in enumerate(faces):
        status = store.STATUS_CODE[f.drop] if f.drop else 0
        if status == 0 and identity is not None:
            identity.adopt(f, f"{where} frame {frame_index}")
            if not identity.keeps(f):
                status = store.STATUS_CODE["identity"]
        if status == 0 and f.crop_png is not None:
            write_crop(faces_dir / store.crop_name(sid, frame_index, i), f.crop_png)
        records.append(store.Face(
            box=f.box, score=f.score, landmarks=f.landmarks, landmarks_raw=f.landmarks_raw,
            matrix=f.matrix, size=settings.size, coverage=settings.coverage, blur=f.blur,
            status=status, tracked=f.tracked, track=f.track, descriptor=f.descriptor,
            confidence=f.confidence))
    return records


def _store_frames(ctx, gen, writer: store.Writer, source, path: Path, settings: ExtractSettings,
                  identity: Identity | None, faces_dir: Path, summary: SideSummary, progress: Progress,
                  flush_seconds: float) -> None:
    """The loop: every frame's faces into the store (a part every `flush_seconds`) and its crops."""
    last_flush = time.monotonic()
    try:
        for fr, faces in gen:
            writer.add(fr.index, _records(faces, fr.index, source.id, path.name, settings, identity, faces_dir))
            summary.new_frames += 1
            progress.faces += len(faces)
            progress.step(f"extract {source.side}: {path.name}")
            if time.monotonic() - last_flush > flush_seconds:
                writer.flush()
                last_flush = time.monotonic()
            if ctx is not None and ctx.cancelled:
                raise JobCancelled()
    finally:
        gen.close()
        writer.flush()  # every frame added so far has its crops on disk: keep them
    writer.compact()


def _mark_video(ctx, project, path: Path, spath: Path, info, every: int, decoded: int, side: str,
                summary: SideSummary, progress: Progress) -> None:
    """A video's marker: complete when every frame decoded, else partial (the next run tries again)."""
    from core.media import fingerprint

    complete, partial = spath / COMPLETE, spath / fingerprint.PARTIAL
    expected = len(range(0, info.frames or 0, every))
    if info.frames and decoded < expected:
        atomic_write_json(partial, {"decoded": decoded, "expected": expected, "every": every,
                                    "container_frames": info.frames})
        complete.unlink(missing_ok=True)
        summary.partial.append({"path": str(path), "decoded": decoded, "expected": expected})
        progress.step(f"extract {side}: {path.name} (partial)", n=0, force=True)  # where it stopped
        note(ctx, f"{path.name}: only {decoded} of {expected} frames could be decoded (the container counts "
                  f"{info.frames}): the file looks truncated or damaged. Marked partial; `facepair extract "
                  f"{project.name}` tries the rest again", "warning")
    else:
        atomic_write_json(complete, {"frames": decoded, "every": every})
        partial.unlink(missing_ok=True)


def _report_source(ctx, path: Path, info, side: str, final: store.Alignments, errors: list, settings: ExtractSettings,
                   summary: SideSummary) -> None:
    """The source's corrupt images and totals into the summary; a warning when it has no face."""
    for _index, name, msg in errors:
        summary.corrupt.append(f"{path.name}/{name}" if info.kind == "folder" else name)
        note(ctx, f"skipped corrupt image: {msg}", "warning")
    summary.add_store(final)
    if len(final) == 0:
        summary.empty_sources.append(str(path))
        note(ctx, f"{path}: no faces found (side {side}); check that it shows a face of at least "
                  f"{settings.min_face or 'the minimum'} px, or try --detector cnn or a smaller --min-face", "warning")


def extract_source(ctx, project, source, settings: ExtractSettings, identity: Identity | None,
                   summary: SideSummary, progress: Progress, pools: Pools,
                   flush_seconds: float = FLUSH_SECONDS, pool_min_frames: int | None = None) -> None:
    """Extract one source into faces/SIDE and its store, resuming what a previous run stored.

    A source whose file changed since its store was written (`core.media.fingerprint.compare`) is
    re-extracted from the start; a video that decodes fewer frames than its container counts is
    marked partial (no complete marker: the next run tries again). Adds the store's totals
    (frames, faces found, kept, dropped), not only this run's, to `summary`."""
    from core.media import fingerprint

    side, sid = source.side, source.id
    path = Path(source.path)
    info = probe(path)  # MediaError for a missing / unreadable source
    spath = store.store_path(project, sid)
    want = settings.for_store()
    current = fingerprint.fingerprint(path, source.kind)
    source = _check_store(ctx, project, source, path, want, current, summary)
    writer = store.Writer(spath, store.meta_for(source, want, current))
    is_video = info.kind == "video"
    if is_video and (spath / COMPLETE).is_file():
        note(ctx, f"{path.name}: already extracted (use --fresh to redo it)")
        progress.step("already extracted", n=len(range(0, info.frames or 0, max(1, settings.every))))
        summary.already_extracted.append(str(path))
        summary.add_store(store.load(spath))
        return
    previous = store.load(spath)
    _resume(ctx, project, side, sid, path, previous, progress)
    done_set = set(previous.frames.tolist())
    every = max(1, settings.every) if is_video else 1
    start = _first_frame(info, every, done_set, is_video)
    errors: list[tuple[int, str, str]] = []
    frames_iter = media.iter_frames(path, start=start, every=every, skip=done_set,
                                    on_error=lambda *e: errors.append(e))
    opts = settings.find_options(video=is_video)
    faces_dir = project.faces_dir(side)
    faces_dir.mkdir(parents=True, exist_ok=True)
    todo = sum(1 for f in range(start, info.frames or 0, every) if f not in done_set)
    pool, segment = _pool_and_segment(pools, opts, todo, is_video, summary, pool_min_frames)
    first_track = int(previous.track.max()) + 1 if len(previous) else 0
    gen = find_faces(frames_iter, opts, workers=pool, segment=segment, first_track=first_track)
    _store_frames(ctx, gen, writer, source, path, settings, identity, faces_dir, summary, progress, flush_seconds)
    final = store.load(spath)
    if is_video:
        _mark_video(ctx, project, path, spath, info, every, len(final.frames), side, summary, progress)
    _report_source(ctx, path, info, side, final, errors, settings, summary)
