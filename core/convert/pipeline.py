"""Conversion: put B's generated face on A in every frame of a video (or image, or folder of images).

    decode → find faces → identity match → swap (batched, on the device) → merge → label → encode

Each arrow is a bounded queue and each stage runs in its own thread, so decoding, inference,
merging and encoding overlap and the slowest stage sets the pace (numpy, OpenCV, JAX and the ffmpeg
pipe all release the GIL while they work). Faces come from the project's alignments store when the
input is an extracted source of the project (every frame processed), else they are detected on the
fly with the extraction pipeline's face finder (tracking and landmark smoothing for videos). With
`faces="match"` only faces whose dlib descriptor matches the replaced side's person are swapped
(decided once per track in a video), so other people in the frame are left alone.

Every output is labelled as synthetic (core.media.label): container metadata always, the visible mark
unless `label=False`, and a C2PA manifest when c2pa can sign the format (a failure there is reported
and the other two labels stay). Outputs are written under a temporary name and renamed when
complete (core.media.write).

Job kinds: `convert` (`run_job`) and `preview` (`run_preview_job`: one frame converted, side by side
with the original, for tuning the options).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.convert.merge import MergeOptions
from core.errors import FacepairError, JobCancelled
from core.media import label as labels
from core.media import types as mediatypes

DIRECTIONS = ("a-to-b", "b-to-a", "a-to-a", "b-to-b")  # the last two: self-swap controls (bench quality)
FACE_MODES = ("all", "match")
DEFAULT_BATCH = 32
QUEUE_FRAMES = 8  # frames buffered between two stages (bounds memory for any video length)
QUEUE_BYTES = 64 << 20  # … or fewer, for large frames
HOLD_BYTES = 256 << 20  # frames the swap stage may hold while it gathers a batch of faces
IDENTITY_THRESHOLD = 0.6  # dlib's same-person distance
REFERENCE_FACES = 12  # descriptors sampled from a side's faces to know who that side is
VIDEO_SUFFIX = ".mp4"


class ConvertError(FacepairError):
    """A conversion cannot start or cannot go on (bad option, no model, unusable input)."""


# ---- options ---------------------------------------------------------------------------------------

def parse_time(value) -> float | None:
    """Seconds from 12.5, '12.5', '1:02.5' or '0:01:02.5'; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        if not re.fullmatch(r"\d+(?:\.\d*)?|(?:\d+:){1,2}\d+(?:\.\d*)?", text):
            raise ConvertError(f"cannot read the time {value!r}: use seconds (12.5) or [h:]mm:ss(.ms)")
        seconds = 0.0
        for part in text.split(":"):
            seconds = seconds * 60 + float(part)
    if seconds < 0:
        raise ConvertError(f"time {value!r} is negative")
    return seconds


def replaced_side(direction: str) -> str:
    """The side whose person is in the input footage ('a' for a-to-b)."""
    return direction.split("-to-")[0]


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ConvertError(f"--swap must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    return direction


def merge_options(mask="hull", erode=None, blur=None, color="reinhard", blend="feather", sharpen=0.0) -> MergeOptions:
    try:
        return MergeOptions(color=color, mask=mask, blend=blend, erode=None if erode is None else int(erode),
                            blur=None if blur is None else int(blur), sharpen=float(sharpen or 0.0))
    except ValueError as e:
        raise ConvertError(f"bad merge option: {e}") from None


def input_kind(path: Path) -> str:
    from core.media.read import MediaError

    kind = mediatypes.classify(path)
    if not path.exists():
        raise ConvertError(f"input {path}: no such file or folder")
    if kind is None:
        raise MediaError(f"input {path}: not a video or image facepair reads (videos: "
                         f"{', '.join(sorted(mediatypes.VIDEO_EXTS))}; images: {', '.join(sorted(mediatypes.IMAGE_EXTS))})")
    if kind == "image":
        from core.media.read import check_image_pixels

        check_image_pixels(path)  # over the pixel limit: refused from the header, before any job
    return kind


def default_output(project, input_path: Path, kind: str, direction: str) -> Path:
    """PROJECT/output/STEM_a-to-b.mp4 (a video), .png/.jpg (an image), or a folder."""
    stem = re.sub(r"[^\w.-]+", "-", input_path.stem if kind != "folder" else input_path.name).strip("-") or "input"
    base = project.output_dir / f"{stem}_{direction}"
    if kind == "video":
        return base.with_name(base.name + VIDEO_SUFFIX)
    if kind == "image":
        suffix = input_path.suffix.lower()
        return base.with_name(base.name + (suffix if suffix in (".png", ".jpg", ".jpeg") else ".png"))
    return base


def c2pa_possible(out: Path, kind: str) -> bool:
    """Whether a C2PA manifest can be attached to this output (folders: their images are PNG/JPEG)."""
    from core.media import label as labels

    return kind == "folder" or Path(out).suffix.lower() in labels.C2PA_FORMATS


def c2pa_note(out: Path, label: bool = True) -> str:
    from core.media import label as labels

    fmts = ", ".join(sorted(labels.C2PA_FORMATS))
    rest = ("its container metadata and the visible mark" if label else
            "its container metadata alone (--no-label: no visible mark)")
    return (f"{Path(out).name}: C2PA cannot sign {Path(out).suffix} files (it signs {fmts}), so this output gets "
            f"no C2PA manifest; it is labelled as AI-generated by {rest}")


class OutputExists(ConvertError):
    """The output exists and replacing it was not asked for (`--overwrite`)."""


def source_at(project, out: Path):
    """The project's source that writing `out` would overwrite or change (its file, its folder or a
    file in it, the original a copy was made from, a folder output it sits in), or None."""
    out = Path(out).resolve()
    for src in project.sources:
        for p in (src.path, src.copied_from):
            if not p:
                continue
            p = Path(p).resolve()
            if out == p or p in out.parents or (out.is_dir() and p.parent == out):
                return src
    return None


def check_output(project, out: Path, default: Path | None = None, overwrite: bool = False) -> None:
    """Refuse to write over a source of the project (always), and over any other existing file or
    non-empty folder unless `overwrite` (the default output in PROJECT/output/ is facepair's own and
    is replaced: a re-run after changing options updates it)."""
    src = source_at(project, out)
    if src is not None:
        raise ConvertError(f"output {out} would write over side {src.side}'s source {src.path} of project "
                           f"{project.name!r}; facepair never overwrites a source: choose another --output")
    if overwrite or (default is not None and Path(out) == Path(default)):
        return
    if out.is_dir() and not any(out.iterdir()):
        return
    if out.exists() or out.is_symlink():
        what = "folder" if out.is_dir() else "file"
        raise OutputExists(f"output {out} exists ({what}); pass --overwrite to replace it, or choose another --output")


def resolve_output(project, input_path: Path, kind: str, direction: str, output: str | None,
                   overwrite: bool = False) -> Path:
    from core.media import write as video_out

    default = default_output(project, input_path, kind, direction)
    out = Path(output).expanduser().resolve() if output else default
    if out == input_path.resolve():
        raise ConvertError(f"output {out} is the input; choose another --output")
    check_output(project, out, default, overwrite)
    if kind == "video":
        if out.suffix.lower() not in video_out.MUXERS:
            raise ConvertError(f"output {out}: a video is written as {', '.join(sorted(video_out.MUXERS))}")
    elif kind == "image":
        if out.suffix.lower() not in video_out.IMAGE_FORMATS:
            raise ConvertError(f"output {out}: an image is written as {', '.join(sorted(video_out.IMAGE_FORMATS))}")
    else:
        if out.suffix.lower() in video_out.IMAGE_FORMATS or out.suffix.lower() in video_out.MUXERS:
            raise ConvertError(f"output {out}: a folder input is written to a folder, not a file")
        if out.exists() and not out.is_dir():
            raise ConvertError(f"output {out} exists and is not a folder; choose another --output")
    # The folder output is checked through a probe file inside its parent.
    video_out.check_writable(out if kind != "folder" else out.parent / (out.name + ".png"))
    return out


# ---- faces -----------------------------------------------------------------------------------------

@dataclass
class FaceWork:
    landmarks: np.ndarray  # (68, 2) frame pixels
    track: int | None = None
    descriptor: np.ndarray | None = None  # when the alignments store already has one
    matrix: np.ndarray | None = None  # frame → model crop
    crop: np.ndarray | None = None  # (R, R, 3) uint8, fed to the model
    rgb: np.ndarray | None = None  # (R, R, 3) float32, the model's face
    mask: np.ndarray | None = None  # (R, R) float32, the model's mask


@dataclass
class FrameWork:
    index: int
    image: np.ndarray
    name: str = ""
    faces: list[FaceWork] = field(default_factory=list)  # the faces to swap
    found: int = 0  # faces found in the frame
    other: int = 0  # faces left alone: another person


class IdentityMatcher:
    """Is this face the replaced side's person? dlib descriptor distance to that side's reference,
    decided once per track (a video) or per face (stills)."""

    def __init__(self, reference: np.ndarray, threshold: float = IDENTITY_THRESHOLD):
        self.reference = np.asarray(reference, np.float32)
        self.threshold = threshold
        self._tracks: dict[int, bool] = {}
        self.computed = 0

    def distance(self, descriptor: np.ndarray) -> float:
        return float(np.linalg.norm(self.reference - np.asarray(descriptor, np.float32), axis=-1).min())

    def matches(self, image: np.ndarray, face: FaceWork) -> bool:
        if face.descriptor is not None:  # the finder or the store described this track already
            ok = self.distance(face.descriptor) < self.threshold
            if face.track is not None and face.track >= 0:
                self._tracks[face.track] = ok
            return ok
        if face.track is not None and face.track >= 0 and face.track in self._tracks:
            return self._tracks[face.track]
        from core.faces import detect

        desc = detect.descriptor(image, face.landmarks)
        self.computed += 1
        ok = self.distance(desc) < self.threshold
        if face.track is not None and face.track >= 0:
            self._tracks[face.track] = ok
        return ok


def reference_descriptors(project, side: str, limit: int = REFERENCE_FACES) -> np.ndarray:
    """Who the side's person is: (K, 128) dlib descriptors. The extraction's identity reference
    (`alignments/_reference-SIDE.json`) and the descriptors it stored for the side's kept faces when
    there are any; else descriptors computed on up to `limit` of the side's crops."""
    from core.faces import alignments as store
    from core.faces import detect
    from core.faces.align import crop_landmarks
    from core.faces.faceset import face_files
    from core.media.read import read_image
    from core.system.atomic import read_json

    out: list[np.ndarray] = []
    try:
        data = read_json(project.alignments_dir / f"_reference-{side}.json")
        out += [np.asarray(d, np.float32).reshape(128) for d in data.get("descriptors", [])]
    except (OSError, ValueError, TypeError):
        pass
    stored: list[np.ndarray] = []
    for src in project.sources_of(side):
        try:
            a = store.load_for_source(project, src.id)
        except FacepairError:
            continue
        kept = a.status[a.descriptor_face] == 0 if len(a.descriptor_face) else np.zeros(0, bool)
        stored += list(a.descriptors[kept])
    if stored:
        picks = np.linspace(0, len(stored) - 1, min(limit, len(stored))).round().astype(int)
        out += [np.asarray(stored[i], np.float32) for i in picks]
    if out:
        return np.stack(out)
    files = face_files(project, side)
    if not files:
        raise ConvertError(
            f"--faces match needs side {side}'s faces ({project.label(side)}) to know who to swap, and "
            f"faces/{side} is empty: run `facepair extract {project.name}` or use --faces all")
    picks = [files[round(i)] for i in np.linspace(0, len(files) - 1, min(limit, len(files)))]
    stores: dict[str, object] = {}
    for f in picks:
        parsed = store.parse_crop_name(f.name)
        if parsed is None:
            continue
        sid, frame, face = parsed
        if sid not in stores:
            try:
                stores[sid] = store.load_for_source(project, sid)
            except FacepairError:
                stores[sid] = None
        a = stores[sid]
        row = a.row(frame, face) if a is not None else None
        if row is None:
            continue
        try:
            crop = read_image(f)
        except FacepairError:
            continue
        out.append(detect.descriptor(crop, crop_landmarks(a.landmarks[row], a.matrix[row])))
    if not out:
        raise ConvertError(f"--faces match could not describe side {side}'s person from faces/{side} "
                           f"(no usable crop with an alignment record): re-run `facepair extract "
                           f"{project.name}` or use --faces all")
    return np.stack(out).astype(np.float32)


def crop_geometry(project, side: str) -> tuple[float, tuple[float, float]]:
    """(coverage, center) of the crops the model was trained on (from the extraction settings)."""
    from core.faces import align
    from core.faces import alignments as store

    for src in project.sources_of(side):
        try:
            settings = store.read_meta(store.store_path(project, src.id)).get("settings", {})
        except FacepairError:
            continue
        if "coverage" in settings:
            center = settings.get("center") or align.CENTER
            return float(settings["coverage"]), (float(center[0]), float(center[1]))
    return align.COVERAGE, tuple(align.CENTER)


def extracted_store(project, input_path: Path, first: int, stop: int | None, frames: int | None = None):
    """The alignments store of `input_path` when it is an extracted source of this project whose
    store holds every frame in [first, stop) (stop None: to the video's `frames`) and describes the
    file as it is now; else None (`store_for_input` also says why)."""
    return store_for_input(project, input_path, first, stop, frames)[0]


def store_for_input(project, input_path: Path, first: int, stop: int | None, frames: int | None = None):
    """(store, None) as `extracted_store`, or (None, why) when `input_path` is a source of this
    project whose store cannot be used: 'changed …' when the file is not the one the store describes
    (core.media.fingerprint.compare), else a shorter reason; (None, None) when it is no source."""
    from core.faces import alignments as store
    from core.faces.sources import check_store

    want = str(input_path.resolve())
    for src in project.sources:
        if want not in (src.path, src.copied_from):
            continue
        if not store.store_exists(project, src.id):
            return None, "not extracted"
        check = check_store(project, src, path=input_path)
        if check.changed:
            return None, f"changed since it was extracted ({check.why})"
        try:
            a = store.load_for_source(project, src.id)
        except FacepairError as e:
            return None, str(e)
        if not len(a.frames):
            return None, "its store holds no frames"
        last = stop if stop is not None else (frames if frames is not None else int(a.frames[-1]) + 1)
        if frames is not None:
            last = min(last, frames)
        needed = np.arange(first, last)
        if len(needed) and np.isin(needed, a.frames).all():
            return a, None
        return None, "its store does not hold every frame asked for"
    return None, None


def store_faces(a, frame_index: int, track_descriptors: dict[int, np.ndarray] | None = None) -> list[FaceWork]:
    out = []
    for r in a.faces_in(frame_index):
        track = int(a.track[r])
        desc = a.descriptor(int(r))
        if desc is None and track_descriptors is not None:
            desc = track_descriptors.get(track)
        out.append(FaceWork(landmarks=np.asarray(a.landmarks[r], np.float32), track=track, descriptor=desc))
    return out


def track_descriptors(a) -> dict[int, np.ndarray]:
    """The stored descriptor of each track (the extraction computes one per track and segment)."""
    out: dict[int, np.ndarray] = {}
    for row, desc in zip(a.descriptor_face.tolist(), a.descriptors, strict=True):
        out.setdefault(int(a.track[row]), desc)
    return out


# ---- the pipeline ----------------------------------------------------------------------------------

_END = object()


class _Stopped(Exception):
    pass


class Pipeline:
    """Threads joined by bounded queues; the first error stops every stage and is re-raised."""

    def __init__(self):
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.busy: dict[str, float] = {}
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def put(self, q: queue.Queue, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped()
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue):
        while True:
            if self.stop.is_set():
                raise _Stopped()
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue

    def add_busy(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.busy[stage] = self.busy.get(stage, 0.0) + seconds

    def spawn(self, name: str, target: Callable[[], None]) -> None:
        def run():
            try:
                target()
            except _Stopped:
                pass
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                with self._lock:
                    if self.error is None:
                        self.error = e
                self.stop.set()

        t = threading.Thread(target=run, name=f"convert:{name}", daemon=True)
        self.threads.append(t)
        t.start()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def join(self, timeout: float = 30.0) -> None:
        for t in self.threads:
            t.join(timeout=timeout)


@dataclass
class Counters:
    frames_in: int = 0
    frames_out: int = 0
    faces_found: int = 0
    faces_swapped: int = 0
    faces_other: int = 0
    frames_swapped: int = 0
    broken_at: int | None = None
    broken_reason: str | None = None


class Converter:
    """One conversion: the swapper, the options, and the stage functions the pipeline threads run."""

    def __init__(self, swapper, direction: str, options: MergeOptions, *, matcher: IdentityMatcher | None,
                 coverage: float, center: tuple[float, float], visible_label: bool, batch: int = DEFAULT_BATCH):
        self.swapper = swapper
        self.direction = direction
        self.options = options
        self.matcher = matcher
        self.coverage = coverage
        self.center = center
        self.visible_label = visible_label
        self.batch = max(1, int(batch))
        self.resolution = int(swapper.resolution)
        self.counters = Counters()
        self.queue_frames = QUEUE_FRAMES

    def size_queues(self, frame_bytes: int) -> None:
        """Fewer frames in flight for large frames (4K: 2 a queue), so memory stays bounded."""
        self.queue_frames = int(max(2, min(QUEUE_FRAMES, QUEUE_BYTES // max(1, frame_bytes))))

    # -- stage: faces → the ones to swap
    def select(self, frame: FrameWork, found: list[FaceWork]) -> FrameWork:
        frame.found = len(found)
        keep = []
        for f in found:
            if self.matcher is None or self.matcher.matches(frame.image, f):
                keep.append(f)
            else:
                frame.other += 1
        frame.faces = keep
        return frame

    # -- stage: crops → model → faces
    def swap(self, frames: list[FrameWork]) -> None:
        from core.faces import align

        work = [f for fr in frames for f in fr.faces]
        if not work:
            return
        r = self.resolution
        for f in work:
            f.matrix = align.crop_matrix(f.landmarks, r, coverage=self.coverage, center=self.center)
        for fr in frames:
            for f in fr.faces:
                f.crop = align.warp_to_crop(fr.image, f.matrix, r)
        for i in range(0, len(work), self.batch):
            chunk = work[i:i + self.batch]
            n = len(chunk)
            batch = np.zeros((self.batch, r, r, 3), np.uint8)  # one shape: the model compiles once
            batch[:n] = np.stack([f.crop for f in chunk])
            rgb, mask = self.swapper.swap(batch, direction=self.direction)
            rgb = np.asarray(rgb, np.float32)
            mask = None if mask is None else np.asarray(mask, np.float32)
            for j, f in enumerate(chunk):
                f.rgb = rgb[j]
                f.mask = None if mask is None else mask[j]

    # -- stage: merge back + label
    def merge(self, frame: FrameWork) -> np.ndarray:
        from core.convert.merge import merge_face

        out = frame.image
        if frame.faces:
            out = frame.image.copy()
            for f in frame.faces:
                merge_face(out, f.rgb, f.crop, f.matrix, f.landmarks, self.options, learned_mask=f.mask)
        if self.visible_label:
            if out is frame.image:
                out = frame.image.copy()
            labels.burn_label(out)
        return out

    def count(self, frame: FrameWork) -> None:
        c = self.counters
        c.faces_found += frame.found
        c.faces_swapped += len(frame.faces)
        c.faces_other += frame.other
        c.frames_swapped += bool(frame.faces)

    def run(self, frames: Iterator[FrameWork], sink: Callable[[FrameWork, np.ndarray], None],
            on_tick: Callable[[], None] | None = None, cancelled: Callable[[], bool] | None = None) -> Pipeline:
        """Run the stages over `frames` (which finds the faces) into `sink`. Raises the first error."""
        p = Pipeline()
        q_found: queue.Queue = queue.Queue(self.queue_frames)
        q_swapped: queue.Queue = queue.Queue(self.queue_frames)
        q_merged: queue.Queue = queue.Queue(self.queue_frames)

        def source():
            it = iter(frames)
            while True:
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                finally:
                    p.add_busy("find", time.perf_counter() - t0)
                self.counters.frames_in += 1
                p.put(q_found, frame)
            p.put(q_found, _END)

        def swapper():
            # Faces wait until a full batch is gathered (one compiled shape, full device batches);
            # frames before the first waiting face go straight on, and a long stretch of frames
            # without faces flushes a partial batch so memory stays bounded.
            pending: list[FrameWork] = []
            faces = held = 0

            def flush() -> None:
                nonlocal pending, faces, held
                t0 = time.perf_counter()
                self.swap(pending)
                p.add_busy("infer", time.perf_counter() - t0)
                for fr in pending:
                    p.put(q_swapped, fr)
                pending, faces, held = [], 0, 0

            while True:
                item = p.get(q_found)
                if item is _END:
                    break
                if not pending and not item.faces:
                    p.put(q_swapped, item)
                    continue
                pending.append(item)
                faces += len(item.faces)
                held += item.image.nbytes
                if faces >= self.batch or held >= HOLD_BYTES:
                    flush()
            if pending:
                flush()
            p.put(q_swapped, _END)

        def merger():
            while True:
                item = p.get(q_swapped)
                if item is _END:
                    break
                t0 = time.perf_counter()
                out = self.merge(item)
                p.add_busy("merge", time.perf_counter() - t0)
                p.put(q_merged, (item, out))
            p.put(q_merged, _END)

        def encoder():
            while True:
                item = p.get(q_merged)
                if item is _END:
                    break
                frame, out = item
                t0 = time.perf_counter()
                sink(frame, out)
                p.add_busy("encode", time.perf_counter() - t0)
                self.count(frame)
                self.counters.frames_out += 1

        for name, target in (("source", source), ("swap", swapper), ("merge", merger), ("encode", encoder)):
            p.spawn(name, target)
        try:
            while p.alive():
                if cancelled is not None and cancelled():
                    p.stop.set()
                    p.join()
                    raise JobCancelled()
                if on_tick is not None:
                    on_tick()
                for t in p.threads:
                    t.join(timeout=0.1)
                    if t.is_alive():
                        break
        except BaseException:
            p.stop.set()
            p.join()
            raise
        p.join()
        if p.error is not None:
            raise p.error
        return p


# ---- frame sources ---------------------------------------------------------------------------------

def frames_from_store(frames, a) -> Iterator[FrameWork]:
    tracks = track_descriptors(a)
    for fr in frames:
        yield FrameWork(fr.index, fr.image, fr.name, faces=store_faces(a, fr.index, tracks))


def frames_detected(frames, video: bool, detector: str = "hog", descriptors: bool = False,
                    workers: int | None = None) -> Iterator[FrameWork]:
    """Faces found on the fly by the extraction pipeline's face finder (`core.extract.pipeline.find_faces`):
    tracked with smoothed landmarks in a video, every face of every still for images. With
    `descriptors`, each track gets a dlib descriptor per segment (for the identity match)."""
    from core.extract import pipeline as extract

    opts = extract.FindOptions(detector=detector, video=video, descriptors=descriptors)
    workers = extract.default_workers() if workers is None else workers
    for fr, found in extract.find_faces(frames, opts, workers=workers):
        yield FrameWork(fr.index, fr.image, fr.name, faces=[
            FaceWork(landmarks=np.asarray(f.landmarks, np.float32), track=int(f.track),
                     descriptor=f.track_descriptor if f.track_descriptor is not None else f.descriptor)
            for f in found])


class _TrackBreak:
    """Wraps a frame iterator: a decoding error after some frames ends the stream and is recorded."""

    def __init__(self, frames, counters: Counters):
        self.frames = frames
        self.counters = counters
        self.last = None

    def __iter__(self):
        from core.media.read import MediaError

        it = iter(self.frames)
        while True:
            try:
                fr = next(it)
            except StopIteration:
                return
            except MediaError as e:
                if self.last is None:
                    raise
                self.counters.broken_at = self.last + 1
                self.counters.broken_reason = str(e)
                return
            self.last = fr.index
            yield fr


# ---- sinks -----------------------------------------------------------------------------------------

class FolderSink:
    """Converted stills into a hidden partial folder, renamed over the output folder at the end."""

    def __init__(self, final: Path, meta: dict, sign: Callable[[Path], str | None] | None):
        from core.media import write as video_out

        self.final = final
        self.tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        for p in final.parent.glob(f".{final.name}.partial-*"):
            m = re.search(r"-(\d+)$", p.name)
            if m and not _alive(int(m.group(1))):
                shutil.rmtree(p, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.meta = meta
        self.sign = sign
        self.c2pa_failures: list[str] = []
        self.written = 0
        self._video_out = video_out

    def __call__(self, frame: FrameWork, image: np.ndarray) -> None:
        name = Path(frame.name or f"{frame.index:06d}.png")
        if name.suffix.lower() not in self._video_out.IMAGE_FORMATS:
            name = name.with_suffix(".png")
        hooks = []
        if self.sign is not None:
            def hook(path: Path) -> None:
                reason = self.sign(path)
                if reason:
                    self.c2pa_failures.append(reason)
            hooks = [hook]
        self._video_out.write_image(self.tmp / name.name, image, self.meta, before_rename=hooks)
        self.written += 1

    def close(self) -> Path:
        old = None
        if self.final.exists():
            old = self.final.with_name(f".{self.final.name}.old-{os.getpid()}")
            os.rename(self.final, old)
        os.rename(self.tmp, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    from core.system import procs

    return pid == os.getpid() or procs.is_alive(pid)


class ImageSink:
    """One converted still, written atomically with its labels."""

    def __init__(self, final: Path, meta: dict, sign: Callable[[Path], str | None] | None):
        self.final, self.meta, self.sign = final, meta, sign
        self.c2pa_failures: list[str] = []
        self.written = 0

    def __call__(self, frame: FrameWork, image: np.ndarray) -> None:
        from core.media import write as video_out

        hooks = []
        if self.sign is not None:
            def hook(path: Path) -> None:
                reason = self.sign(path)
                if reason:
                    self.c2pa_failures.append(reason)
            hooks = [hook]
        video_out.write_image(self.final, image, self.meta, before_rename=hooks)
        self.written += 1

    def close(self) -> Path:
        return self.final

    def abort(self) -> None:
        pass


# ---- the model -------------------------------------------------------------------------------------

_swappers: dict[tuple, object] = {}


def load_swapper(project, warn=None):
    """The project's trained model (core.train.model_io); a clear error naming `facepair train` when absent.
    A damaged newest checkpoint is moved aside and the newest intact one used; `warn(text)` says so.

    Kept per process while the model's status.json is unchanged, so conversions run in one process
    (tests, scripts) load and compile the model once.
    """
    from core.train import model_io

    status = project.model_dir / "status.json"
    try:
        st = status.stat()
        key = (str(project.model_dir.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _swappers:
        return _swappers[key]
    swapper = model_io.load_swapper(project, warn=warn)
    if key is not None:
        _swappers.clear()  # one model at a time: a retrained model replaces the old one
        _swappers[key] = swapper
    return swapper


def make_converter(project, direction: str, options: MergeOptions, faces: str, label: bool, swapper=None,
                   batch: int = DEFAULT_BATCH, warn=None) -> Converter:
    """A Converter for the project's model (loaded unless given), checked against the options."""
    side = replaced_side(direction)
    if swapper is None:
        swapper = load_swapper(project, warn=warn)
    if options.mask == "learned" and not getattr(swapper, "has_mask", False):
        raise ConvertError(f"--mask learned needs a model with a learned mask, and preset "
                           f"{getattr(swapper, 'preset', '?')!r} has none: use --mask hull")
    matcher = IdentityMatcher(reference_descriptors(project, side)) if faces == "match" else None
    coverage, center = crop_geometry(project, side)
    return Converter(swapper, direction, options, matcher=matcher, coverage=coverage, center=center,
                     visible_label=bool(label), batch=batch)


# ---- the job ---------------------------------------------------------------------------------------

def run_job(ctx, input: str, output: str | None = None, start=None, end=None, swap: str = "a-to-b",
            faces: str = "match", mask: str = "hull", erode: int | None = None, blur: int | None = None,
            color: str = "reinhard", blend: str = "feather", sharpen: float = 0.0, crf: int = 18,
            label: bool = True, batch: int = DEFAULT_BATCH, detector: str = "hog",
            workers: int | None = None, overwrite: bool = False) -> dict:
    """The `convert` job kind (arguments as `facepair convert` takes them; see docs/conversion.md)."""
    return convert(ctx.project, input, output=output, start=start, end=end, swap=swap, faces=faces, mask=mask,
                   erode=erode, blur=blur, color=color, blend=blend, sharpen=sharpen, crf=crf, label=label,
                   batch=batch, detector=detector, workers=workers, ctx=ctx, overwrite=overwrite)


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


def convert(project, input: str, output: str | None = None, start=None, end=None, swap: str = "a-to-b",
            faces: str = "match", mask: str = "hull", erode: int | None = None, blur: int | None = None,
            color: str = "reinhard", blend: str = "feather", sharpen: float = 0.0, crf: int = 18,
            label: bool = True, batch: int = DEFAULT_BATCH, detector: str = "hog", workers: int | None = None,
            ctx=None, swapper=None, overwrite: bool = False) -> dict:
    """Convert `input` (video, image or folder) and return the job's result (see run_job)."""
    from core.media import read as media
    from core.media import write as video_out

    ctx = ctx or _Quiet(project)
    t_start = time.monotonic()
    direction = check_direction(swap)
    if faces not in FACE_MODES:
        raise ConvertError(f"--faces must be one of {', '.join(FACE_MODES)}, not {faces!r}")
    options = merge_options(mask, erode, blur, color, blend, sharpen)
    if not 0 <= int(crf) <= 51:
        raise ConvertError(f"--crf must be 0–51 (lower is better quality), not {crf}")
    in_path = Path(input).expanduser().resolve()
    kind = input_kind(in_path)
    info = media.probe(in_path)
    out_path = resolve_output(project, in_path, kind, direction, output, overwrite)  # fails before any work
    t0, t1 = parse_time(start), parse_time(end)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise ConvertError(f"--end ({end}) must be after --start ({start})")
    if kind != "video" and (t0 or t1 is not None):
        raise ConvertError("--start/--end apply to a video input, not to images")

    side = replaced_side(direction)
    conv = make_converter(project, direction, options, faces, label, swapper, batch=batch, warn=ctx.warning)
    swapper = conv.swapper
    conv.size_queues(info.width * info.height * 3)

    created = labels.now_iso()
    meta = labels.metadata(project.name, created)
    home = project.home
    ctx.message(f"converting {in_path.name} ({kind}) {direction}: {project.label(side)} → "
                f"{project.label('b' if side == 'a' else 'a')}, faces {faces}, model {getattr(swapper, 'preset', '?')} "
                f"step {getattr(swapper, 'step', '?')}")
    ctx.message("visible 'AI-generated' label: " + ("on" if label else "OFF (--no-label); "
                + ("metadata and C2PA labels stay" if c2pa_possible(out_path, kind) else
                   "the metadata label stays (no C2PA for this format)")),
                level="info" if label else "warning")
    if not c2pa_possible(out_path, kind):
        ctx.warning(c2pa_note(out_path, label))

    # Frames and where their faces come from.
    first = 0
    stop = None
    fps = info.fps or 25.0
    if kind == "video":
        first = int(round((t0 or 0.0) * fps))
        stop = int(round(t1 * fps)) if t1 is not None else None
        if info.frames is not None and first >= info.frames:
            raise ConvertError(f"--start {start} is past the end of {in_path.name} ({info.frames} frames, "
                               f"{info.frames / fps:.2f} s)")
    total = None
    if info.frames is not None:
        total = (min(stop, info.frames) if stop is not None else info.frames) - first
    raw = media.iter_frames(in_path, start=first, stop=stop,
                            on_error=lambda i, n, msg: ctx.warning(f"skipped {n}: {msg}"))
    guarded = _TrackBreak(raw, conv.counters)
    a, why = store_for_input(project, in_path, first, stop, info.frames) if kind == "video" else (None, None)
    if a is not None:
        ctx.message(f"faces from the alignments store of this extracted source ({len(a)} faces)")
        frames = frames_from_store(guarded, a)
    else:
        if why and why.startswith("changed"):
            ctx.warning(f"{in_path.name} {why}: its stored alignments describe another file, so they are not used; "
                        f"faces are detected on the fly (run `facepair extract {project.name}` to extract it again)")
        ctx.message("detecting faces on the fly" + (" (tracked, smoothed landmarks)" if kind == "video" else ""))
        if workers is None:  # a process pool costs seconds to start: only for inputs that repay it
            from core.extract import pipeline as extract

            enough = extract.POOL_MIN_FRAMES if kind == "video" else extract.POOL_MIN_IMAGES
            workers = extract.default_workers() if (total or 0) >= enough else 1
        frames = frames_detected(guarded, video=kind == "video", detector=detector, descriptors=conv.matcher is not None,
                                 workers=workers)
    frames = (conv.select(fr, fr.faces) for fr in frames)

    # Where they go.
    def sign(p: Path) -> str | None:
        return labels.embed_c2pa(p, home, project.name, created, title=out_path.name)

    writer = None
    if kind == "video":
        desc = video_out.describe(in_path, count_frames=False)
        audio = next((s for s in desc["streams"] if s["kind"] == "audio"), None)
        file_start = desc.get("start") or 0.0
        v_start = desc.get("video_start") or file_start
        kw = {}
        if audio is not None:
            kw["audio_from"] = in_path
            kw["audio_codec"] = audio.get("codec")
            if first or stop is not None:
                kw["audio_start"] = max(0.0, v_start - file_start + first / fps)
                if stop is not None:
                    kw["audio_duration"] = (stop - first) / fps
            else:
                kw["video_delay"] = v_start - file_start
        writer = video_out.VideoWriter(out_path, fps, (info.width, info.height), crf=int(crf), metadata=meta, **kw)

        def sink(frame: FrameWork, image: np.ndarray) -> None:
            if image.shape[:2] != (info.height, info.width):  # a mid-stream size change: keep the first size
                import cv2

                image = cv2.resize(image, (info.width, info.height), interpolation=cv2.INTER_AREA)
            writer.write(image)
        closer = None
    elif kind == "image":
        sink = ImageSink(out_path, meta, sign)
        closer = sink
    else:
        sink = FolderSink(out_path, meta, sign)
        closer = sink

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

    cancelled = lambda: bool(getattr(ctx, "cancelled", False))  # noqa: E731
    try:
        pipeline = conv.run(frames, sink, on_tick=tick, cancelled=cancelled)
    except BaseException:
        if writer is not None:
            writer.abort()
        if closer is not None:
            closer.abort()
        raise
    c = conv.counters
    if c.frames_out == 0:
        if writer is not None:
            writer.abort()
        if closer is not None:
            closer.abort()
        raise ConvertError(f"no frame of {in_path} could be decoded; nothing was written")

    # Where the input broke, if it did.
    if c.broken_at is None and kind == "video" and total is not None and c.frames_out < total:
        c.broken_at = first + c.frames_out
        c.broken_reason = "the video ends early (truncated or corrupt)"
    if c.broken_at is not None:
        at = c.broken_at / fps
        ctx.warning(f"the input broke at frame {c.broken_at} ({at:.2f} s): {c.broken_reason}; converted the "
                    f"{c.frames_out} frames before it")

    c2pa_reason = None
    if writer is not None:
        hooks = []
        if c.broken_at is not None:
            hooks.append(lambda p: video_out.cut(p, writer.frames / float(writer.rate)
                                                 + (kw.get("video_delay") or 0.0)))

        def c2pa_hook(p: Path) -> None:
            nonlocal c2pa_reason
            c2pa_reason = sign(p)
        hooks.append(c2pa_hook)
        result_path = writer.close(before_rename=hooks)
    else:
        result_path = closer.close()
        fails = closer.c2pa_failures
        c2pa_reason = fails[0] if fails else None
    if c2pa_reason:
        ctx.warning(f"C2PA manifest not added ({c2pa_reason}); the output still carries the metadata label"
                    + (" and the visible label" if label else ""))

    if c.faces_swapped == 0:
        if c.faces_found == 0:
            ctx.warning(f"no faces found in {c.frames_out} frames: the output is the input re-encoded "
                        f"(with its labels)")
        else:
            ctx.warning(f"found {c.faces_found} faces in {c.frames_out} frames but none is "
                        f"{project.label(side)} (--faces match): the output is the input re-encoded; "
                        f"use --faces all to swap every face")
    elapsed = time.monotonic() - t_start
    stage_fps = {k: (c.frames_out / v if v > 0 else None) for k, v in pipeline.busy.items()}
    result = {
        "output": str(result_path), "kind": kind, "frames": c.frames_out, "frames_total": total,
        "frames_swapped": c.frames_swapped, "faces_found": c.faces_found, "faces_swapped": c.faces_swapped,
        "faces_other": c.faces_other, "faces_source": "alignments" if a is not None else "detected",
        "source_changed": bool(why and why.startswith("changed")),
        "input_broken_at": c.broken_at, "visible_label": bool(label), "metadata_label": True,
        "c2pa": c2pa_reason is None, "c2pa_error": c2pa_reason, "seconds": round(elapsed, 3),
        "fps": round(c.frames_out / elapsed, 2) if elapsed > 0 else None,
        "stage_fps": {k: (round(v, 1) if v else None) for k, v in stage_fps.items()},
        "swap": direction, "faces": faces,
    }
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


def preview(project, input: str, frame: int = 0, output: str | None = None, swap: str = "a-to-b",
            faces: str = "match", mask: str = "hull", erode: int | None = None, blur: int | None = None,
            color: str = "reinhard", blend: str = "feather", sharpen: float = 0.0, label: bool = True,
            detector: str = "hog", ctx=None, swapper=None) -> dict:
    from core.media import read as media
    from core.media import write as video_out

    ctx = ctx or _Quiet(project)
    direction = check_direction(swap)
    if faces not in FACE_MODES:
        raise ConvertError(f"--faces must be one of {', '.join(FACE_MODES)}, not {faces!r}")
    options = merge_options(mask, erode, blur, color, blend, sharpen)
    in_path = Path(input).expanduser().resolve()
    kind = input_kind(in_path)
    info = media.probe(in_path)
    n = int(frame)
    if n < 0 or (info.frames is not None and n >= info.frames):
        raise ConvertError(f"--frame {n} is out of range: {in_path.name} has {info.frames} frames (0–{(info.frames or 1) - 1})")
    if output:
        out_path = Path(output).expanduser().resolve()
        if out_path.suffix.lower() not in video_out.IMAGE_FORMATS:
            raise ConvertError(f"preview output {out_path} must be a .png or .jpg")
        check_output(project, out_path, overwrite=True)  # never over a source
    else:
        out_path = Path(getattr(ctx, "dir", project.output_dir)) / f"preview-{in_path.stem}-{n:06d}.png"
    video_out.check_writable(out_path)
    side = replaced_side(direction)
    conv = make_converter(project, direction, options, faces, label, swapper, warn=ctx.warning)
    swapper = conv.swapper
    fr = next(iter(media.iter_frames(in_path, start=n, stop=n + 1)), None)
    if fr is None:
        raise ConvertError(f"frame {n} of {in_path} could not be decoded")
    a, why = store_for_input(project, in_path, n, n + 1) if kind == "video" else (None, None)
    if why and why.startswith("changed"):
        ctx.warning(f"{in_path.name} {why}: its stored alignments are not used; faces are detected on the fly "
                    f"(run `facepair extract {project.name}` to extract it again)")
    if a is not None:
        work = FrameWork(fr.index, fr.image, fr.name, faces=store_faces(a, n, track_descriptors(a)))
    else:
        work = next(frames_detected([fr], video=False, detector=detector, descriptors=conv.matcher is not None,
                                    workers=1))
    work = conv.select(work, work.faces)
    conv.swap([work])
    converted = conv.merge(work)
    side_by_side = np.concatenate([fr.image, converted], axis=1)
    created = labels.now_iso()
    meta = labels.metadata(project.name, created)
    reason = None

    def c2pa_hook(p: Path) -> None:
        nonlocal reason
        reason = labels.embed_c2pa(p, project.home, project.name, created, title=out_path.name)

    video_out.write_image(out_path, side_by_side, meta, before_rename=[c2pa_hook])
    if reason:
        ctx.warning(f"C2PA manifest not added to the preview ({reason})")
    if work.found == 0:
        ctx.warning(f"no face found in frame {n}: the right half is the frame unchanged")
    elif not work.faces:
        ctx.warning(f"frame {n} has {work.found} faces but none is {project.label(side)} (--faces match)")
    ctx.progress(1, 1, stage="preview", unit="frames", info=f"{len(work.faces)} faces swapped", force=True)
    ctx.emit("preview", step=getattr(swapper, "step", None), path=str(out_path), frame=n)
    return {"output": str(out_path), "frame": n, "faces_found": work.found, "faces_swapped": len(work.faces),
            "faces_other": work.other, "visible_label": bool(label), "c2pa": reason is None}
