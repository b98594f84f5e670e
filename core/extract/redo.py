"""Re-detecting the frames an extraction left without a face (`facepair extract NAME --redo-missing`).

For each already-extracted source of a side, the frames `core.extract.missing` lists (no face, or
a lost track) are decoded again and searched with the detector and size limit the user gives now
(`--detector cnn`, a lower `--min-face`): every frame is a full detection (`detect_every` 1),
tracked and smoothed within its run of consecutive frames, filtered as extraction filters
(size, blur, the side's identity reference), its kept crops written to faces/SIDE under their
usual names. The crops keep the store's geometry (size, coverage, centre, every), not this run's.

The store is appended to, never rewritten: one new part (core.faces.alignments.Writer) holds each
changed frame — the store's newest part owns a frame, so the part repeats the frame's earlier
faces unchanged, at their indices, then adds the new ones after them (indices are never
renumbered: crop names and curation.json keys stay valid; a new face is not always the leftmost).
A new face where the store already has one (centres within half a face size):
- kept, or removed by the user (status 4): the new one is dropped — a removed detection never
  comes back, its crop stays in the trash;
- dropped by a filter (small, blurry, another person) and now kept: it takes that face's index
  (that face had no crop and no curation decision); dropped again: nothing changes.
New faces get new track ids. The score cache (core.faces.scores) follows from the store's new part.

A source whose file changed since it was extracted, or that has no store yet, is skipped with a
message (run `facepair extract NAME` first). May import what core.extract.source may.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import JobCancelled
from core.extract import missing
from core.extract.finder import FacePool, FindOptions, find_faces
from core.extract.identity import Identity
from core.extract.source import FLUSH_SECONDS, ExtractSettings, Progress, note, write_crop
from core.faces import align
from core.faces import alignments as store
from core.media import read as media
from core.media.probe import probe

REMOVED = store.STATUS_CODE["removed"]
KEPT = store.STATUS_CODE["kept"]


@dataclass
class RedoSummary:
    """One side's redo: frames re-detected, how many got a face, the faces kept and dropped."""

    side: str
    extracted: int = 0  # sources with a store that describes their file
    sources: int = 0  # of those, sources with frames to redo
    frames: int = 0  # frames re-detected
    recovered: int = 0  # of those, frames without a kept face that have one now
    faces_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # new faces dropped, by filter
    already: int = 0  # new faces where the store had a kept face already
    still_removed: int = 0  # new faces where the user had removed one: left out
    nothing_missing: list[str] = field(default_factory=list)  # sources with no frame to redo
    skipped: dict[str, str] = field(default_factory=dict)  # source path → why it was not redone

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def line(self) -> str | None:
        """The job's closing message for this side (None for a side without sources)."""
        skipped = "".join(f"; {Path(p).name} skipped ({w})" for p, w in self.skipped.items())
        if not self.extracted:
            return f"side {self.side}: nothing to redo{skipped}" if self.skipped else None
        if not self.frames:
            n = self.extracted
            return (f"side {self.side}: nothing to redo: every frame of its {n} extracted source{'s' * (n != 1)} "
                    f"has a face and no track was lost{skipped}")
        dropped = ", ".join(f"{v} {k}" for k, v in self.dropped.items() if v)
        notes = [f"{dropped} dropped" if dropped else "",
                 f"{self.still_removed} you removed left out" if self.still_removed else ""]
        return (f"side {self.side}: {self.recovered} of {self.frames} frames without a face got one "
                f"({self.faces_kept} faces kept)" + "".join(f"; {n}" for n in notes if n) + skipped)


def source_missing(project, source, info=None) -> missing.SourceMissing:
    """The no-face and lost-track runs of an extracted source (AlignmentsError when it has no store)."""
    a = store.load_for_source(project, source.id)
    return missing_of(a, source, info)


def missing_of(a: store.Alignments, source, info=None) -> missing.SourceMissing:
    """`missing.find_missing` for a loaded store, with the source's frame rate and image names."""
    kind = source.kind
    fps, names = None, None
    if kind == "video":
        try:
            fps = (info or probe(source.path)).fps
        except media.MediaError:
            fps = None
    elif kind == "folder":
        from core.media.types import images_in

        names = [p.name for p in images_in(Path(source.path))] if Path(source.path).is_dir() else None
    elif kind == "image":
        names = [Path(source.path).name]
    return missing.find_missing(a, kind, fps, names)


def plan(project, sides: tuple[str, ...]) -> dict[str, list[tuple[object, missing.SourceMissing | str]]]:
    """Per side, each source with its missing runs, or why it cannot be redone (words)."""
    from core.faces.sources import check_store

    out: dict[str, list] = {}
    for s in sides:
        rows = out.setdefault(s, [])
        for src in project.sources_of(s):
            if not store.store_exists(project, src.id):
                rows.append((src, f"not extracted yet: run `facepair extract {project.name}` first"))
                continue
            check = check_store(project, src)
            if check.changed or check.state == "missing":
                rows.append((src, f"changed since it was extracted ({check.why}): run `facepair extract "
                                  f"{project.name}` to extract it again first"))
                continue
            try:
                rows.append((src, source_missing(project, src)))
            except (store.AlignmentsError, media.MediaError) as e:
                rows.append((src, str(e)))
    return out


def listing(project, sides: tuple[str, ...]) -> list[dict]:
    """What `facepair missing` shows: each source of the sides with its runs
    (`SourceMissing.as_dict`), or `state` and `why` when it has none to show."""
    out = []
    for s, rows in plan(project, sides).items():
        for src, m in rows:
            head = {"side": s, "source": src.id, "path": src.path, "kind": src.kind}
            if isinstance(m, str):
                out.append({**head, "state": "not listed", "why": m})
            else:
                out.append({**head, "state": "listed", **m.as_dict()})
    return out


class _Wanted:
    """`iter_frames`' `skip`: every index but the wanted ones."""

    def __init__(self, frames: list[int]):
        self.frames = set(frames)

    def __bool__(self) -> bool:
        return True

    def __contains__(self, index: int) -> bool:
        return index not in self.frames


class _Stream:
    """One pass over decoded frames, handed out run by run (`upto` stops at a run's last frame)."""

    def __init__(self, frames):
        self.it, self.head = iter(frames), None

    def upto(self, last: int):
        while True:
            if self.head is None:
                self.head = next(self.it, None)
                if self.head is None:
                    return
            if self.head.index > last:
                return
            fr, self.head = self.head, None
            yield fr


def _find_options(settings: ExtractSettings, geometry: dict, video: bool) -> FindOptions:
    """This run's detector and filters with the store's crop geometry; a full detection every frame."""
    center = geometry.get("center") or align.CENTER
    return FindOptions(detector=settings.detector, min_face=settings.min_face, detect_every=1,
                       smooth=settings.smooth, video=video, descriptors=settings.identity,
                       crop_size=int(geometry.get("size") or settings.size),
                       coverage=float(geometry.get("coverage") or settings.coverage),
                       center=(float(center[0]), float(center[1])), drop_small=True, drop_blur=settings.blur)


def _same_place(box: np.ndarray, other: np.ndarray) -> bool:
    """Two boxes of one face: centres within half the larger one's size."""
    b, o = np.asarray(box, np.float64), np.asarray(other, np.float64)
    size = max(b[2] - b[0], b[3] - b[1], o[2] - o[0], o[3] - o[1])
    return bool(np.linalg.norm((b[:2] + b[2:]) / 2 - (o[:2] + o[2:]) / 2) <= size / 2)


def _old_faces(a: store.Alignments, frame: int, curated: dict) -> list[store.Face]:
    """A frame's faces as the store holds them, as records to repeat in the new part. Their status
    is the parts' own: curation.json's decisions (on faces that had a crop, i.e. kept) stay there."""
    out = []
    for r in a.faces_in(frame):
        status = KEPT if (frame, int(a.face_index[r])) in curated else int(a.status[r])
        out.append(store.Face(box=a.box[r], score=float(a.score[r]), landmarks=a.landmarks[r],
                              landmarks_raw=a.landmarks_raw[r], matrix=a.matrix[r], size=int(a.size[r]),
                              coverage=float(a.coverage[r]), blur=float(a.blur[r]), status=status,
                              tracked=bool(a.tracked[r]), track=int(a.track[r]), descriptor=a.descriptor(int(r)),
                              confidence=float(a.confidence[r])))
    return out


class _SourceRedo:
    """One source's frames re-detected into a new store part (module notes)."""

    def __init__(self, project, source, a: store.Alignments, opts: FindOptions, identity: Identity | None,
                 summary: RedoSummary):
        self.source, self.a, self.opts, self.identity, self.summary = source, a, opts, identity, summary
        self.curated = store.read_curation(a.path)
        self.faces_dir = project.faces_dir(source.side)
        self.writer = store.Writer(a.path)
        self.where = Path(source.path).name

    def _status(self, f, index: int) -> int:
        """A found face's status: its finder filter (small, blurry), else the side's identity filter."""
        if f.drop:
            return store.STATUS_CODE[f.drop]
        if self.identity is not None:
            self.identity.adopt(f, f"{self.where} frame {index}")
            if not self.identity.keeps(f):
                return store.STATUS_CODE["identity"]
        return KEPT

    def _record(self, f, status: int) -> store.Face:
        return store.Face(box=f.box, score=f.score, landmarks=f.landmarks, landmarks_raw=f.landmarks_raw,
                          matrix=f.matrix, size=int(self.opts.crop_size), coverage=float(self.opts.coverage),
                          blur=f.blur, status=status, tracked=f.tracked, track=f.track, descriptor=f.descriptor,
                          confidence=f.confidence)

    def _count(self, status: int) -> None:
        if status != KEPT:
            name = store.STATUS[status]
            self.summary.dropped[name] = self.summary.dropped.get(name, 0) + 1

    def frame(self, index: int, found) -> None:
        """Merge one re-detected frame's faces into its records (module notes); the kept ones' crops
        written, the frame added to the new part when anything changed."""
        a, summ = self.a, self.summary
        records = _old_faces(a, index, self.curated)
        effective = [int(a.status[r]) for r in a.faces_in(index)]  # the user's decisions applied
        touched: set[int] = set()  # slots this redo filled
        for f in found:
            status = self._status(f, index)
            same = next((i for i, old in enumerate(records) if _same_place(old.box, f.box)), None)
            if same in touched:
                continue  # a second detection of a face this redo has just added
            if same is not None and effective[same] == REMOVED:
                summ.still_removed += 1  # the user removed that detection: it does not come back
                continue
            if same is not None and (effective[same] == KEPT or status != KEPT):
                summ.already += effective[same] == KEPT
                continue
            self._count(status)
            slot = len(records) if same is None else same
            if status == KEPT and f.crop_png is not None:
                write_crop(self.faces_dir / store.crop_name(self.source.id, index, slot), f.crop_png)
                summ.faces_kept += 1
            if same is None:
                records.append(self._record(f, status))
            else:
                records[same] = self._record(f, status)
            touched.add(slot)
        if touched:
            self.writer.add(index, records)
        if KEPT not in effective and any(records[i].status == KEPT for i in touched):
            summ.recovered += 1


def redo_source(ctx, project, source, m: missing.SourceMissing, settings: ExtractSettings,
                identity: Identity | None, summary: RedoSummary, progress: Progress,
                flush_seconds: float = FLUSH_SECONDS) -> None:
    """Re-detect the frames `m` lists of one source (module notes); progress per frame."""
    frames = m.to_redo()
    a = store.load_for_source(project, source.id)
    path = Path(source.path)
    video = source.kind == "video"
    step = max(1, int(a.settings.get("every") or 1)) if video else 1
    opts = _find_options(settings, a.settings, video)
    work = _SourceRedo(project, source, a, opts, identity, summary)
    work.faces_dir.mkdir(parents=True, exist_ok=True)
    errors: list = []
    decoded = media.iter_frames(path, start=frames[0], every=step, stop=frames[-1] + 1, skip=_Wanted(frames),
                                on_error=lambda *e: errors.append(e))
    stream = _Stream(decoded)
    next_track = int(a.track.max()) + 1 if len(a) else 0
    last_flush = time.monotonic()
    summary.sources += 1
    note(ctx, f"{path.name}: re-detecting {len(frames)} frames ({settings.detector}, smallest face "
              f"{settings.min_face or 'automatic'})")
    try:
        with FacePool(1, opts.detector, opts.descriptors) as pool:
            for run in missing.runs_of(frames, step):
                gen = find_faces(stream.upto(run[-1]), opts, workers=pool, first_track=next_track)
                try:
                    for fr, found in gen:
                        work.frame(fr.index, found)
                        next_track = max([next_track, *(f.track + 1 for f in found)])
                        summary.frames += 1
                        progress.faces += len(found)
                        progress.step(f"redo {source.side}: {path.name}")
                        if time.monotonic() - last_flush > flush_seconds:
                            work.writer.flush()
                            last_flush = time.monotonic()
                        if ctx is not None and ctx.cancelled:
                            raise JobCancelled()
                finally:
                    gen.close()
    finally:
        work.writer.flush()  # the crops of every frame added are on disk: keep them
    for _index, name, msg in errors:
        note(ctx, f"skipped unreadable image: {name}: {msg}", "warning")


def redo_sides(project, ctx, sides: tuple[str, ...], settings: ExtractSettings, reference: list[str] | None,
               flush_seconds: float = FLUSH_SECONDS) -> dict[str, RedoSummary]:
    """`--redo-missing` over the sides: every extracted source's missing frames re-detected."""
    planned = plan(project, sides)
    total = sum(len(m.to_redo()) for rows in planned.values() for _, m in rows if not isinstance(m, str))
    progress = Progress(ctx, total or None)
    summaries: dict[str, RedoSummary] = {}
    for s in sides:
        summ = summaries[s] = RedoSummary(s)
        ident = Identity(project, s, settings.identity_threshold, reference) if settings.identity else None
        for src, m in planned[s]:
            if ctx is not None:
                ctx.check_cancelled()
            if isinstance(m, str):
                summ.skipped[src.path] = m
                note(ctx, f"{Path(src.path).name}: not redone: {m}", "warning")
                continue
            summ.extracted += 1
            if not m.to_redo():
                summ.nothing_missing.append(src.path)
                continue
            redo_source(ctx, project, src, m, settings, ident, summ, progress, flush_seconds)
    if total:
        progress.step("redo done", n=0, force=True)
    return summaries
