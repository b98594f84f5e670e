"""The extraction pipeline and the `extract` job kind; `find_faces`, the face finder other stages use.

Pipeline (per source): decode (a thread, `core.media.read`) → cut into segments → in worker processes:
detect / track → 68 landmarks → smooth in time → align → crop (PNG bytes) → back in order in this
process: filters (size, blur, identity) → write kept crops → the alignments store (one atomic
part every few seconds) → progress events.

Finding faces in a video (`find_faces`, also used by conversion, fit and evaluation)
- Full-frame detection runs on *keyframes* only (every `detect_every` frames, default 10): HOG
  on a grayscale copy rescaled for `min_face` (see core.faces.detect).
- Between keyframes a face is *tracked*: the predictor runs in the box derived from the face's
  previous landmarks (`detect.box_from_landmarks`), and the result is checked with
  `detect.face_score` (the HOG score of the face warped upright). When the score drops below
  `track_min_score` the face is re-detected in a window around it; if that fails too the track
  ends. A keyframe detection that matches a tracked face re-seeds its landmarks from the detector
  box (no drift).
- A detection whose upright re-score is below `track_min_score` too is taken for a false
  detection (a badge, a pattern) and dropped; every face kept has scored as a face upright.
- A face first detected on a keyframe is also tracked *backwards* to the frames since the previous
  keyframe, so a face that appears between keyframes is not lost.
- Landmarks are smoothed in time, per track, with a centred Gaussian (σ = 1 frame, ±2 frames; the
  window shrinks symmetrically at a track's ends, so there is no lag: constant-speed motion is
  unchanged, jitter is averaged) — on by default for videos (`smooth=False` turns it off). Raw
  values are kept next to the smoothed ones.
- Frames are processed in segments (≈64 frames, fewer for large frames) with 3 frames of context
  on each side, so smoothing and tracking see across segment borders; segments run in parallel
  worker processes and come back in order. Track ids are linked across segments.
Images and folders are stills: every image gets a full detection, no tracking or smoothing.

Identity filter: a face is kept when its track's dlib descriptor is within `identity_threshold`
(0.6) of a reference: the `--reference` photos, else the side's first confident face (saved in
`alignments/_reference-SIDE.json` so a resumed run uses the same one). One descriptor is computed
per track and segment (on its most confident frame), not per frame: ~145 ms each on a CPU.

Resume: frames already in a source's store are skipped; crops of frames not in the store (written
by a run that was killed before its next store part) are deleted and redone, so nothing is
duplicated. Changing crop settings (size, coverage, every) re-extracts that source from scratch.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FacepairError, JobCancelled
from core.faces import align, detect
from core.faces import alignments as store
from core.media import read as media
from core.system.atomic import atomic_write_json, read_json

DETECT_EVERY = 10
TRACK_MIN_SCORE = 0.0
SMOOTH_SIGMA = 1.0
SMOOTH_RADIUS = 2
SEGMENT = 64
POOL_MIN_FRAMES = 300  # video frames (or images, below) from which a source is worth a process pool
POOL_MIN_IMAGES = 32
PAD = 3
SEGMENT_BYTES = 192 << 20  # frames held per segment (bounds memory for large frames)
BLUR_THRESHOLD = 20.0
BLUR_SIZE = 128
AUTO_REF_MIN_SCORE = 0.5
FLUSH_SECONDS = 5.0
COMPLETE = "complete.json"  # in a video's store: every frame was processed (core.media.fingerprint.COMPLETE)
SIZE_RANGE = (64, 1024)


def auto_min_face(width: int, height: int) -> int:
    """Default smallest face: 60 px, or 1/16 of the frame's short side for large frames."""
    return max(60, int(round(min(width, height) / 16)))


@dataclass(frozen=True)
class FindOptions:
    """How faces are found. `min_face` None = `auto_min_face` of each frame."""

    detector: str = "hog"
    min_face: float | None = None
    detect_every: int = DETECT_EVERY
    track_min_score: float = TRACK_MIN_SCORE
    smooth: bool = True
    video: bool = True
    descriptors: bool = False
    crop_size: int | None = None  # also make crops (PNG bytes) of this size
    drop_small: bool = False  # mark faces under min_face "small" (no crop, no descriptor)
    drop_blur: float = 0.0  # mark faces with a blur score under this "blurry" (no crop, no descriptor)
    coverage: float = align.COVERAGE
    center: tuple[float, float] = align.CENTER
    max_side: int = detect.MAX_DETECT_SIDE


@dataclass
class FoundFace:
    """A face in one frame (frame pixels). `score` is the detector's (NaN when only tracked),
    `confidence` the upright re-score (`detect.face_score`)."""

    box: np.ndarray
    score: float
    confidence: float
    landmarks: np.ndarray
    landmarks_raw: np.ndarray
    tracked: bool = False
    track: int = -1
    descriptor: np.ndarray | None = None  # computed on this very face
    track_descriptor: np.ndarray | None = None  # the descriptor of this face's track (identity)
    matrix: np.ndarray | None = None
    crop_png: bytes | None = None
    blur: float = float("nan")
    drop: str | None = None  # "small" / "blurry" when FindOptions asked to drop such faces

    @property
    def size(self) -> float:
        b = self.box
        return float(max(b[2] - b[0] + 1, b[3] - b[1] + 1))


# ---- one segment (runs in a worker) ----------------------------------------------------------

@dataclass
class _Cand:
    track: int
    raw: np.ndarray
    box: np.ndarray
    score: float
    conf: float
    tracked: bool


def _min_face(opts: FindOptions, image: np.ndarray) -> float:
    return opts.min_face if opts.min_face else auto_min_face(image.shape[1], image.shape[0])


def _from_detection(image: np.ndarray, d: detect.Detection, track: int) -> _Cand:
    lm = detect.landmarks(image, d)
    box = d.predictor_box().as_array()
    return _Cand(track, lm, box, d.score, detect.face_score(image, lm), False)


def _track_step(image: np.ndarray, prev: np.ndarray, track: int, opts: FindOptions) -> _Cand | None:
    """The face with landmarks `prev` in the previous frame, found again in `image` (or None)."""
    box = detect.box_from_landmarks(prev)
    lm = detect.landmarks(image, box)
    conf = detect.face_score(image, lm)
    if conf >= opts.track_min_score:
        return _Cand(track, lm, detect.box_from_landmarks(lm).as_array(), float("nan"), conf, True)
    # Lost confidence: re-detect near the last position.
    found = detect.detect_in_region(image, box, opts.detector)
    if found:
        best = max(found, key=lambda d: detect.iou(d.predictor_box(), box))
        if detect.iou(best.predictor_box(), box) > 0.3:
            c = _from_detection(image, best, track)
            if c.conf >= opts.track_min_score:
                return c
    return None


def _dedupe(cands: list[_Cand]) -> list[_Cand]:
    out: list[_Cand] = []
    for c in sorted(cands, key=lambda c: (c.tracked, -c.conf)):  # detections first, then most confident
        if all(detect.iou(c.box, o.box) < 0.5 for o in out):
            out.append(c)
    return out


def _track_segment(images: list[np.ndarray], opts: FindOptions) -> list[list[_Cand]]:
    n = len(images)
    k = max(1, int(opts.detect_every))
    results: list[list[_Cand]] = [[] for _ in range(n)]
    active: list[_Cand] = []
    next_track = 0
    for t, image in enumerate(images):
        keyframe = t % k == 0 or t == n - 1
        dets = detect.detect(image, opts.detector, _min_face(opts, image), opts.max_side) if keyframe else []
        boxes = [d.predictor_box().as_array() for d in dets]
        used: set[int] = set()
        current: list[_Cand] = []
        for a in active:
            # On a keyframe a detection that matches the track re-seeds it (no drift); else track.
            pred = detect.box_from_landmarks(a.raw).as_array()
            j = max(range(len(dets)), key=lambda i: detect.iou(boxes[i], pred), default=None)
            if j is not None and j not in used and detect.iou(boxes[j], pred) > 0.4:
                used.add(j)
                fresh = _from_detection(image, dets[j], a.track)
                if fresh.conf >= opts.track_min_score:
                    current.append(fresh)
                    continue
            if (c := _track_step(image, a.raw, a.track, opts)) is not None:
                current.append(c)
        for j, d in enumerate(dets):
            if j in used or any(detect.iou(boxes[j], c.box) > 0.4 for c in current):
                continue
            cand = _from_detection(image, d, next_track)
            if cand.conf < opts.track_min_score:  # not face-like once upright: a false detection
                continue
            next_track += 1
            current.append(cand)
            # Backwards: the frames since the previous keyframe may hold this face too.
            prev = cand
            for i in range(t - 1, max(-1, t - k), -1):
                if any(detect.iou(prev.box, o.box) > 0.4 for o in results[i]):
                    break
                back = _track_step(images[i], prev.raw, cand.track, opts)
                if back is None:
                    break
                results[i].append(back)
                prev = back
        current = _dedupe(current)
        results[t] = current
        active = current
    return results


def _still(image: np.ndarray, opts: FindOptions, first_track: int) -> list[_Cand]:
    dets = detect.detect(image, opts.detector, _min_face(opts, image), opts.max_side)
    cands = [_from_detection(image, d, first_track + i) for i, d in enumerate(dets)]
    return _dedupe([c for c in cands if c.conf >= opts.track_min_score])


def smooth_sequence(points: np.ndarray, sigma: float = SMOOTH_SIGMA, radius: int = SMOOTH_RADIUS) -> np.ndarray:
    """Smooth one unbroken run of a track's landmarks (L, ..., 2) in time: a centred Gaussian over
    ±`radius` frames. Near the run's ends the window shrinks symmetrically, so the filter never
    lags: motion at constant speed comes out unchanged, jitter is averaged away."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    out = pts.copy()
    w_all = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma * sigma))
    for j in range(n):
        r = min(radius, j, n - 1 - j)
        if r == 0:
            continue
        w = w_all[radius - r: radius + r + 1]
        out[j] = np.tensordot(w, pts[j - r: j + r + 1], axes=1) / w.sum()
    return out


def smooth_tracks(frames: list[list[_Cand]], sigma: float = SMOOTH_SIGMA, radius: int = SMOOTH_RADIUS
                  ) -> list[list[np.ndarray]]:
    """Smoothed landmarks for every candidate, per track and unbroken run (`smooth_sequence`)."""
    out: list[list[np.ndarray]] = [[c.raw for c in cands] for cands in frames]
    runs: dict[int, list[list[tuple[int, int]]]] = {}
    for t, cands in enumerate(frames):
        for i, c in enumerate(cands):
            track_runs = runs.setdefault(c.track, [])
            if track_runs and track_runs[-1][-1][0] == t - 1:
                track_runs[-1].append((t, i))
            else:
                track_runs.append([(t, i)])
    for track_runs in runs.values():
        for run in track_runs:
            if len(run) < 3:
                continue
            sm = smooth_sequence(np.stack([frames[t][i].raw for t, i in run]), sigma, radius)
            for (t, i), lm in zip(run, sm, strict=True):
                out[t][i] = lm.astype(np.float32)
    return out


def blur_score(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Sharpness of a face: the variance of the Laplacian over its landmark hull, measured on a
    BLUR_SIZE-px aligned crop taken from the frame itself — the same scale for every face
    whatever `--size` is, so a face too small to hold detail scores as blurry too.
    Faces out of focus score under ~15, sharp ones in the hundreds (see docs/extraction.md)."""
    import cv2

    m = align.crop_matrix(landmarks, BLUR_SIZE)
    gray = detect.to_gray(image)
    crop = align.warp_to_crop(gray, m, BLUR_SIZE)
    mask = cv2.erode(align.landmark_mask(align.crop_landmarks(landmarks, m), BLUR_SIZE),
                     np.ones((5, 5), np.uint8)) > 127
    lap = cv2.Laplacian(crop, cv2.CV_64F)
    vals = lap[mask] if mask.sum() > 50 else lap.ravel()
    return float(vals.var())


def _descriptors(images: list[np.ndarray], frames: list[list[FoundFace]], lo: int, hi: int) -> None:
    """One descriptor per track in [lo, hi): on its most confident face (of those not dropped);
    shared by the track's faces."""
    best: dict[int, tuple[float, int, int]] = {}
    for t in range(lo, hi):
        for i, f in enumerate(frames[t]):
            if f.drop is None and (f.track not in best or f.confidence > best[f.track][0]):
                best[f.track] = (f.confidence, t, i)
    for track, (_, t, i) in best.items():
        face = frames[t][i]
        desc = detect.descriptor(images[t], face.landmarks_raw)
        face.descriptor = desc
        for u in range(lo, hi):
            for f in frames[u]:
                if f.track == track:
                    f.track_descriptor = desc


def process_segment(images: list[np.ndarray], opts: FindOptions, lo: int = 0, hi: int | None = None,
                    first_track: int = 0) -> list[list[FoundFace]]:
    """Faces in consecutive frames `images` (video) or independent stills. Frames outside
    [lo, hi) are context: their faces come back without crops or descriptors."""
    import cv2

    hi = len(images) if hi is None else hi
    if opts.video:
        cands = _track_segment(images, opts)
    else:
        cands, nxt = [], first_track
        for im in images:
            cands.append(_still(im, opts, nxt))
            nxt += len(cands[-1])
    smoothed = smooth_tracks(cands) if (opts.video and opts.smooth) else [[c.raw for c in row] for row in cands]
    frames: list[list[FoundFace]] = []
    for row, lms in zip(cands, smoothed, strict=True):
        faces = [FoundFace(box=c.box.astype(np.float32), score=float(c.score), confidence=float(c.conf),
                           landmarks=lm, landmarks_raw=c.raw, tracked=c.tracked, track=c.track)
                 for c, lm in zip(row, lms, strict=True)]
        faces.sort(key=lambda f: (float(f.box[0]), float(f.box[1])))  # face 0 = leftmost
        frames.append(faces)
    if opts.drop_small or opts.drop_blur > 0 or opts.crop_size:
        for t in range(lo, hi):
            small = _min_face(opts, images[t])
            for f in frames[t]:
                if opts.drop_small and f.size < small:
                    f.drop = "small"
                    continue
                if opts.crop_size or opts.drop_blur > 0:
                    f.blur = blur_score(images[t], f.landmarks)
                if opts.drop_blur > 0 and f.blur < opts.drop_blur:
                    f.drop = "blurry"
    if opts.descriptors:
        _descriptors(images, frames, lo, hi)
    if opts.crop_size:
        # zlib level 1 with run-length matching: ~4 ms for a 256 px crop and no larger than the
        # default level 3 (~8 ms). Lossless either way.
        png_params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
        for t in range(lo, hi):
            for f in frames[t]:
                f.matrix = align.crop_matrix(f.landmarks, opts.crop_size, opts.coverage, opts.center)
                if f.drop is not None:
                    continue  # dropped faces are recorded (matrix included) but get no crop
                crop = align.warp_to_crop(images[t], f.matrix, opts.crop_size)
                ok, buf = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), png_params)
                f.crop_png = buf.tobytes() if ok else None
    return frames


# ---- workers ---------------------------------------------------------------------------------

def _worker_init(detector: str, descriptors: bool) -> None:
    from core.system import childguard

    childguard.worker_started()  # first: a worker must never outlive the job (module notes there)
    import cv2

    cv2.setNumThreads(1)
    detect.warm_up(detector, descriptors)


def _worker_run(payload) -> list[list[FoundFace]]:
    images, opts, lo, hi, first_track = payload
    return process_segment(images, opts, lo, hi, first_track)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class FacePool:
    """Worker processes for `find_faces` (or this process when `workers` is 1); reusable across
    calls, e.g. for every source of a job. The workers start here, in parallel with the caller.

    'forkserver', not 'fork': OpenCV's and dlib's native thread pools do not survive a fork (a
    forked worker can deadlock), and a conversion process may run JAX. The fork server loads the
    dlib models once (`detect.PRELOAD_ENV`), so each worker forks with them already in memory.
    The fork server and the workers die with this process, whatever kills it (`core.system.childguard`).
    """

    def __init__(self, workers: int = 1, detector: str = "hog", descriptors: bool = False):
        self.workers = max(1, int(workers))
        self._ex = None
        if self.workers <= 1:
            detect.warm_up(detector, descriptors)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from core.system import childguard

        ctx = mp.get_context("forkserver")
        # core.system.childguard first: the fork server and every worker die with this process, even
        # when it is SIGKILLed (a worker would otherwise wait on its queue forever).
        ctx.set_forkserver_preload(["core.system.childguard", "core.faces.detect"])
        self._ex = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_init,
                                       initargs=(detector, descriptors))
        # The fork server (started by the first submit, if not running yet) inherits this variable
        # and loads the models when it preloads core.faces.detect; nothing else here sees it.
        env = {detect.PRELOAD_ENV: "1", childguard.OWNER_ENV: str(os.getpid())}
        previous = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            for _ in range(self.workers):  # start every worker now, not at the first segment
                self._ex.submit(int)
        finally:
            for k, v in previous.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def submit(self, payload):
        if self._ex is None:
            from concurrent.futures import Future

            fut: Future = Future()
            try:
                fut.set_result(_worker_run(payload))
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                fut.set_exception(e)
            return fut
        return self._ex.submit(_worker_run, payload)

    def close(self, cancel: bool = False) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=True, cancel_futures=cancel)
            self._ex = None

    def __enter__(self) -> FacePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close(cancel=True)


def _segment_len(frame: np.ndarray) -> int:
    return int(max(8, min(SEGMENT, SEGMENT_BYTES // max(1, frame.nbytes))))


def find_faces(frames: Iterable[media.Frame | tuple[int, np.ndarray]], opts: FindOptions | None = None,
               workers: int | FacePool = 1, segment: int | None = None, first_track: int = 0) -> Iterator[tuple[media.Frame, list[FoundFace]]]:
    """(frame, faces) for every frame, in order, found as extraction finds them (module notes).

    `frames`: `media.Frame`s or (index, RGB image) pairs, consecutive for a video. `workers` > 1
    runs segments in that many processes (memory: about 2 × workers segments in flight); pass a
    `FacePool` to reuse one across calls.
    Track ids are unique over the whole iterator, from `first_track` on. `segment`: frames a worker gets at a time
    (default: up to 64, fewer for large frames).
    """
    opts = opts or FindOptions()
    detect.check_detector(opts.detector)
    pad = PAD if opts.video else 0
    own_pool = not isinstance(workers, FacePool)
    pool = FacePool(int(workers), opts.detector, opts.descriptors) if own_pool else workers
    inflight: deque = deque()
    track_base = int(first_track)
    prev_tail: list[FoundFace] = []
    buf: list[media.Frame] = []  # the frames of the segment being filled (plus context before it)
    core_start = 0  # position in buf where the next segment's own frames start
    seg_len = None
    max_inflight = 2 * pool.workers

    def submit(final: bool) -> None:
        nonlocal buf, core_start
        core_end = len(buf) if final else len(buf) - pad
        lo_ctx = max(0, core_start - pad)
        images = [f.image for f in buf[lo_ctx:]]
        payload = (images, opts, core_start - lo_ctx, core_end - lo_ctx, 0)
        inflight.append((pool.submit(payload), buf[core_start:core_end], core_start - lo_ctx))
        keep_from = max(0, core_end - pad)
        buf = buf[keep_from:]
        core_start = core_end - keep_from

    def drain(block_until: int) -> Iterator[tuple[media.Frame, list[FoundFace]]]:
        nonlocal track_base, prev_tail
        while len(inflight) > block_until:
            fut, own, lo = inflight.popleft()
            result = fut.result()
            # Link tracks across the border: the previous segment's last own frame is this one's context.
            mapping: dict[int, int] = {}
            if lo > 0 and prev_tail is not None:
                for f in result[lo - 1]:
                    best = max(prev_tail, key=lambda p: detect.iou(p.box, f.box), default=None)
                    if best is not None and detect.iou(best.box, f.box) > 0.4:
                        mapping[f.track] = best.track
            local_max = max((f.track for row in result for f in row), default=-1)
            for row in result:
                for f in row:
                    f.track = mapping.get(f.track, track_base + f.track)
            track_base += local_max + 1
            own_rows = result[lo:lo + len(own)]
            if own_rows:
                prev_tail = own_rows[-1]
            yield from zip(own, own_rows, strict=True)

    try:
        for item in frames:
            fr = item if isinstance(item, media.Frame) else media.Frame(int(item[0]), item[1])
            buf.append(fr)
            if seg_len is None:
                seg_len = _segment_len(fr.image) if opts.video else max(1, min(16, _segment_len(fr.image)))
                if segment:
                    seg_len = max(1, min(seg_len, int(segment)))
            if len(buf) - core_start >= seg_len + pad:
                submit(final=False)
                yield from drain(max_inflight)
        if len(buf) > core_start:
            submit(final=True)
        yield from drain(0)
    finally:
        if own_pool:
            pool.close(cancel=True)
        else:  # a shared pool stays up; drop this call's unfinished segments
            for fut, _, _ in inflight:
                fut.cancel()
            for fut, _, _ in inflight:
                if not fut.cancelled():
                    try:
                        fut.result()
                    except Exception:  # noqa: BLE001 - nobody wants this result any more
                        pass


# ---- the extraction job ----------------------------------------------------------------------

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


def _reference_path(project, side: str) -> Path:
    return project.alignments_dir / f"_reference-{side}.json"


class Identity:
    """The identity filter of one side: reference descriptors and the threshold."""

    def __init__(self, project, side: str, threshold: float, reference_images: list[str] | None):
        self.path = _reference_path(project, side)
        self.threshold = threshold
        self.refs: list[np.ndarray] = []
        self.origin = ""
        if reference_images:
            for p in reference_images:
                self.refs.append(reference_descriptor(p))
            self.origin = "reference photos: " + ", ".join(Path(p).name for p in reference_images)
            self._save()
        elif self.path.is_file():
            try:
                data = read_json(self.path)
                self.refs = [np.asarray(r, np.float32) for r in data["descriptors"]]
                self.origin = data.get("origin", "")
            except (ValueError, KeyError):
                self.refs = []

    def _save(self) -> None:
        atomic_write_json(self.path, {"origin": self.origin, "descriptors": [r.tolist() for r in self.refs]})

    def adopt(self, face: FoundFace, where: str) -> bool:
        """Take the side's first confident face as the reference (when none is set)."""
        if self.refs or face.track_descriptor is None or face.confidence < AUTO_REF_MIN_SCORE:
            return False
        self.refs = [np.asarray(face.track_descriptor, np.float32)]
        self.origin = f"first confident face: {where}"
        self._save()
        return True

    def keeps(self, face: FoundFace) -> bool:
        if not self.refs:
            return True
        if face.track_descriptor is None:
            return False
        return min(detect.descriptor_distance(face.track_descriptor, r) for r in self.refs) <= self.threshold


def reference_descriptor(path: str) -> np.ndarray:
    """The descriptor of the largest face in a reference photo; FacepairError when none."""
    img = media.read_image(path)
    dets = detect.detect(img, min_face=40)
    if not dets:
        raise FacepairError(f"reference photo {path}: no face found in it; choose a photo with one clear face")
    d = max(dets, key=lambda d: d.size)
    return detect.descriptor(img, detect.landmarks(img, d))


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


def _remove_source_output(project, side: str, source_id: str) -> None:
    store.remove(project, source_id)
    for p in project.faces_dir(side).glob(f"{source_id}_*.png"):
        p.unlink(missing_ok=True)


def _write_crop(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class _Progress:
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


def extract_source(ctx, project, source, settings: ExtractSettings, identity: Identity | None,
                   summary: SideSummary, progress: _Progress, pools: _Pools,
                   flush_seconds: float = FLUSH_SECONDS, pool_min_frames: int | None = None) -> None:
    """Extract one source into faces/SIDE and its store, resuming what a previous run stored.

    A source whose file changed since its store was written (`core.media.fingerprint.compare`) is
    re-extracted from the start; a video that decodes fewer frames than its container counts is
    marked partial (no complete marker: the next run tries again). Adds the store's totals
    (frames, faces found, kept, dropped), not only this run's, to `summary`."""
    from core.faces import sources as source_store
    from core.media import fingerprint
    from core.project import projects

    side, sid = source.side, source.id
    path = Path(source.path)
    info = media.probe(path)  # MediaError for a missing / unreadable source
    spath = store.store_path(project, sid)
    want = settings.for_store()
    current = fingerprint.fingerprint(path, source.kind)
    if store.store_exists(project, sid):
        check = fingerprint.compare(source_store.store_record(project, source), current)
        if check.changed:
            _message(ctx, f"{path.name}: the file changed since it was extracted ({check.why}); its alignments and "
                          f"faces describe another file: re-extracting it from the start", "warning")
            summary.changed.append(str(path))
            _remove_source_output(project, side, sid)
        elif current is not None and "fingerprint" not in (store.read_meta(spath).get("source") or {}):
            # A store from before fingerprints, of this very file: record what it describes.
            meta = store.read_meta(spath)
            meta["source"] = {**(meta.get("source") or {}), "fingerprint": current}
            atomic_write_json(spath / store.META, meta)
    if store.store_exists(project, sid):
        old = store.read_meta(spath).get("settings", {})
        changed = [k for k in CROP_SETTINGS if old.get(k) != want.get(k)]
        if changed:
            _message(ctx, f"{path.name}: settings changed ({', '.join(f'{k} {old.get(k)}→{want.get(k)}' for k in changed)}); "
                          "re-extracting it from the start")
            _remove_source_output(project, side, sid)
    if not store.store_exists(project, sid) and current is not None and \
            fingerprint.compare(fingerprint.recorded_for(source), current).state != "same":
        try:  # project.toml describes the file as it is now (what `facepair show` compares)
            source = projects.refresh_source(project, source)
        except (FacepairError, OSError) as e:
            _message(ctx, f"{path.name}: could not update its record in project.toml ({e})", "warning")
    writer = store.Writer(spath, store.meta_for(source, want, current))
    complete = spath / COMPLETE
    partial = spath / fingerprint.PARTIAL
    is_video = info.kind == "video"
    if is_video and complete.is_file():
        _message(ctx, f"{path.name}: already extracted (use --fresh to redo it)")
        progress.step("already extracted", n=len(range(0, info.frames or 0, max(1, settings.every))))
        summary.already_extracted.append(str(path))
        summary.add_store(store.load(spath))
        return
    previous = store.load(spath)
    done = previous.frames
    if len(done):
        removed = _remove_unrecorded_crops(project, side, sid, done)
        _message(ctx, f"{path.name}: resuming; {len(done)} frames already done"
                      + (f", {removed} unrecorded crops redone" if removed else ""))
        progress.step("resuming", n=len(done))
    else:
        _remove_unrecorded_crops(project, side, sid, done)
    done_set = set(done.tolist())
    every = max(1, settings.every) if is_video else 1
    start = 0
    if is_video and len(done):
        # Done frames form a prefix after a resume: start decoding after it.
        wanted = range(0, info.frames or 0, every)
        start = next((f for f in wanted if f not in done_set), 0) if info.frames else 0
    errors: list[tuple[int, str, str]] = []
    frames_iter = media.iter_frames(path, start=start, every=every, skip=done_set,
                                    on_error=lambda *e: errors.append(e))

    opts = settings.find_options(video=is_video)
    faces_dir = project.faces_dir(side)
    faces_dir.mkdir(parents=True, exist_ok=True)
    last_flush = time.monotonic()
    # A process pool costs seconds to start (the fork server loads the dlib models): short
    # sources run in this process, where that cost would not pay off.
    todo = sum(1 for f in range(start, info.frames or 0, every) if f not in done_set)
    per_segment = SEGMENT if is_video else 16
    if pool_min_frames is None:
        pool_min_frames = POOL_MIN_FRAMES if is_video else POOL_MIN_IMAGES
    pool = pools.get(opts) if todo >= pool_min_frames else 1
    workers = pool.workers if isinstance(pool, FacePool) else 1
    summary.workers = max(summary.workers, workers)
    # Segments small enough that every worker gets several (balance), large enough to amortise
    # their context frames and per-track descriptors.
    segment = max(24 if is_video else 4, min(per_segment, todo // (3 * workers) if todo else per_segment))
    first_track = int(previous.track.max()) + 1 if len(previous) else 0
    gen = find_faces(frames_iter, opts, workers=pool, segment=segment, first_track=first_track)
    try:
        for fr, faces in gen:
            records = []
            for i, f in enumerate(faces):
                status = store.STATUS_CODE[f.drop] if f.drop else 0
                if status == 0 and identity is not None:
                    identity.adopt(f, f"{path.name} frame {fr.index}")
                    if not identity.keeps(f):
                        status = store.STATUS_CODE["identity"]
                if status == 0 and f.crop_png is not None:
                    _write_crop(faces_dir / store.crop_name(sid, fr.index, i), f.crop_png)
                records.append(store.Face(
                    box=f.box, score=f.score, landmarks=f.landmarks, landmarks_raw=f.landmarks_raw,
                    matrix=f.matrix, size=settings.size, coverage=settings.coverage, blur=f.blur,
                    status=status, tracked=f.tracked, track=f.track, descriptor=f.descriptor,
                    confidence=f.confidence))
            writer.add(fr.index, records)
            summary.new_frames += 1
            progress.faces += len(faces)
            progress.step(f"extract {side}: {path.name}")
            if time.monotonic() - last_flush > flush_seconds:
                writer.flush()
                last_flush = time.monotonic()
            if ctx is not None and ctx.cancelled:
                raise JobCancelled()
    finally:
        gen.close()
        writer.flush()  # every frame added so far has its crops on disk: keep them
    writer.compact()
    final = store.load(spath)
    if is_video:
        expected = len(range(0, info.frames or 0, every))
        decoded = len(final.frames)
        if info.frames and decoded < expected:
            atomic_write_json(partial, {"decoded": decoded, "expected": expected, "every": every,
                                        "container_frames": info.frames})
            complete.unlink(missing_ok=True)
            summary.partial.append({"path": str(path), "decoded": decoded, "expected": expected})
            progress.step(f"extract {side}: {path.name} (partial)", n=0, force=True)  # where it stopped
            _message(ctx, f"{path.name}: only {decoded} of {expected} frames could be decoded (the container counts "
                          f"{info.frames}): the file looks truncated or damaged. Marked partial; `facepair extract "
                          f"{project.name}` tries the rest again", "warning")
        else:
            atomic_write_json(complete, {"frames": decoded, "every": every})
            partial.unlink(missing_ok=True)
    for _index, name, msg in errors:
        summary.corrupt.append(f"{path.name}/{name}" if info.kind == "folder" else name)
        _message(ctx, f"skipped corrupt image: {msg}", "warning")
    summary.add_store(final)
    if len(final) == 0:
        summary.empty_sources.append(str(path))
        _message(ctx, f"{path}: no faces found (side {side}); check that it shows a face of at least "
                      f"{settings.min_face or 'the minimum'} px, or try --detector cnn or a smaller --min-face", "warning")


class _Pools:
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


def _message(ctx, text: str, level: str = "info") -> None:
    if ctx is not None:
        ctx.message(text, level)


def parse_settings(size: int = 256, every: int = 1, detector: str = "hog", min_face: int | None = None,
                   blur: float = BLUR_THRESHOLD, identity: bool = True,
                   identity_threshold: float = detect.IDENTITY_THRESHOLD, smooth: bool = True,
                   coverage: float = align.COVERAGE, detect_every: int = DETECT_EVERY) -> ExtractSettings:
    """Checked settings; FacepairError naming the bad value."""
    if not (SIZE_RANGE[0] <= int(size) <= SIZE_RANGE[1]):
        raise FacepairError(f"--size {size} is out of range: use {SIZE_RANGE[0]}..{SIZE_RANGE[1]} pixels")
    if int(every) < 1:
        raise FacepairError(f"--every {every} must be 1 or more (1 = every frame)")
    if min_face is not None and int(min_face) < 20:
        raise FacepairError(f"--min-face {min_face} is too small: dlib finds faces of 20 px and more")
    if not 0 < float(coverage) <= 4:
        raise FacepairError(f"coverage {coverage} must be in (0, 4]")
    try:
        detector = detect.check_detector(detector)
    except detect.DetectorError as e:
        raise FacepairError(str(e)) from None
    return ExtractSettings(size=int(size), every=int(every), detector=detector,
                           min_face=int(min_face) if min_face else None, blur=float(blur), identity=bool(identity),
                           identity_threshold=float(identity_threshold), smooth=bool(smooth),
                           coverage=float(coverage), detect_every=max(1, int(detect_every)))


def run_job(ctx, side: str = "both", size: int = 256, every: int = 1, detector: str = "hog",
            min_face: int | None = None, reference: list[str] | None = None, blur: float = BLUR_THRESHOLD,
            identity: bool = True, identity_threshold: float = detect.IDENTITY_THRESHOLD, smooth: bool = True,
            coverage: float = align.COVERAGE, detect_every: int = DETECT_EVERY, workers: int | None = None,
            fresh: bool = False, flush_seconds: float = FLUSH_SECONDS, pool_min_frames: int | None = None) -> dict:
    """The `extract` job kind. Returns (and emits as a `summary` event) per-side totals.

    Holds the project's `extract-a` / `extract-b` lock for the sides it extracts, so two jobs
    never write the same side's crops and stores at once."""
    from core.jobs import locks

    held: list[str] = []
    try:
        for s in (("a", "b") if side in ("both", None) else (side,)):
            if s in ("a", "b"):
                locks.acquire(ctx.project, f"extract-{s}", ctx.job_id, os.getpid())
                held.append(f"extract-{s}")
        return extract(ctx.project, ctx, side=side, size=size, every=every, detector=detector, min_face=min_face,
                       reference=reference, blur=blur, identity=identity, identity_threshold=identity_threshold,
                       smooth=smooth, coverage=coverage, detect_every=detect_every, workers=workers, fresh=fresh,
                       flush_seconds=flush_seconds, pool_min_frames=pool_min_frames)
    finally:
        for name in held:
            locks.release(ctx.project, name, ctx.job_id)


def extract(project, ctx=None, side: str = "both", reference: list[str] | None = None, workers: int | None = None,
            fresh: bool = False, flush_seconds: float = FLUSH_SECONDS, pool_min_frames: int | None = None,
            **options) -> dict:
    """Extract the sources of one or both sides (see `run_job`); usable without a job (`ctx` None)."""
    settings = parse_settings(**options)
    sides = ("a", "b") if side in ("both", None) else (side,)
    for s in sides:
        if s not in ("a", "b"):
            raise FacepairError(f"--side must be a, b or both, not {side!r}")
    for r in reference or []:
        if not Path(r).is_file():
            raise FacepairError(f"reference photo {r}: no such file")
    if reference and len(sides) != 1:
        raise FacepairError("--reference photos show one person: use them with --side a or --side b")
    workers = max(1, int(workers or default_workers()))
    sources = [s for side_ in sides for s in project.sources_of(side_)]
    total = 0
    for s in sources:
        try:
            n = media.probe(s.path).frames or 0
            total += len(range(0, n, settings.every)) if s.kind == "video" else n
        except media.MediaError:
            pass
    progress = _Progress(ctx, total or None)
    summaries: dict[str, SideSummary] = {}
    project.alignments_dir.mkdir(parents=True, exist_ok=True)
    pools = _Pools(workers)
    try:
        for s in sides:
            summ = summaries[s] = SideSummary(s, sources=len(project.sources_of(s)))
            if fresh:
                for src in project.sources_of(s):
                    _remove_source_output(project, s, src.id)
                _reference_path(project, s).unlink(missing_ok=True)
            if not project.sources_of(s):
                _message(ctx, f"side {s} ({project.label(s)}) has no sources: add some with "
                              f"`facepair add-source {project.name} {s} PATH…`", "warning")
                continue
            ident = Identity(project, s, settings.identity_threshold, reference) if settings.identity else None
            if ident is not None and reference:
                _message(ctx, f"side {s}: keeping faces within {settings.identity_threshold} of {ident.origin}")
            for src in project.sources_of(s):
                if ctx is not None:
                    ctx.check_cancelled()
                try:
                    extract_source(ctx, project, src, settings, ident, summ, progress, pools, flush_seconds,
                                       pool_min_frames)
                except media.MediaError as e:
                    summ.errors[src.path] = str(e)
                    _message(ctx, str(e), "error")
            if ident is not None and ident.origin and not reference:
                _message(ctx, f"side {s}: identity reference = {ident.origin}")
    finally:
        pools.close()
    result = {s: summ.as_dict() for s, summ in summaries.items()}
    if ctx is not None:
        ctx.emit("summary", **{"sides": result})
        for s, summ in summaries.items():
            dropped = ", ".join(f"{v} {k}" for k, v in summ.dropped.items() if v) or "none dropped"
            notes = []
            if summ.already_extracted:
                n = len(summ.already_extracted)
                notes.append(f"{n} source{'s' if n != 1 else ''} already extracted")
            if summ.changed:
                notes.append(f"re-extracted (file changed): {', '.join(Path(p).name for p in summ.changed)}")
            if summ.partial:
                notes.append("partial: " + ", ".join(f"{Path(p['path']).name} ({p['decoded']} of {p['expected']} "
                                                      f"frames)" for p in summ.partial))
            if summ.corrupt:
                notes.append(f"{len(summ.corrupt)} corrupt images skipped: {', '.join(summ.corrupt[:5])}")
            ctx.message(f"side {s}: {summ.faces_kept} faces kept of {summ.faces_found} found in "
                        f"{summ.frames} frames ({dropped})" + "".join(f"; {n}" for n in notes),
                        "warning" if summ.partial else "info")
    every_source = [src for s in sides for src in project.sources_of(s)]
    failed = [p for summ in summaries.values() for p in summ.errors]
    if every_source and len(failed) == len(every_source):
        raise FacepairError("nothing could be extracted:\n  " + "\n  ".join(
            m for summ in summaries.values() for m in summ.errors.values()))
    if not every_source:
        raise FacepairError(f"project {project.name!r} has no sources on side {'/'.join(sides)}: "
                            f"add some with `facepair add-source {project.name} a|b PATH…`")
    return {"sides": result}

