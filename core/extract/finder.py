"""The face finder: `find_faces`, as extraction finds faces, also used by conversion, fit and evaluation.

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

May import core.faces, core.media and core.system (worker processes: core.system.childguard).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from core.extract import options
from core.faces import align, detect
from core.faces.scores import blur_score
from core.media import read as media

DETECT_EVERY = options.DETECT_EVERY_DEFAULT
TRACK_MIN_SCORE = 0.0
SMOOTH_SIGMA = 1.0
SMOOTH_RADIUS = 2
SEGMENT = 64
POOL_MIN_FRAMES = 300  # video frames (or images, below) from which a source is worth a process pool
POOL_MIN_IMAGES = 32
PAD = 3
SEGMENT_BYTES = 192 << 20  # frames held per segment (bounds memory for large frames)


def auto_min_face(width: int, height: int) -> int:
    """Default smallest face: 60 px, or 1/16 of the frame's short side for large frames."""
    return max(options.MIN_FACE_AUTO, int(round(min(width, height) / 16)))


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

    @property
    def parallel(self) -> bool:
        """Whether segments run in worker processes (else in this one, when submitted)."""
        return self._ex is not None

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


def _first_segment_len(image: np.ndarray, opts: FindOptions, segment: int | None) -> int:
    """Frames a worker gets at a time: up to 64 for a video (16 for stills), fewer for large
    frames, at most `segment` when given."""
    seg_len = _segment_len(image) if opts.video else max(1, min(16, _segment_len(image)))
    return max(1, min(seg_len, int(segment))) if segment else seg_len


class _Segments:
    """`find_faces`'s frames cut into segments (with `PAD` frames of context on each side for a
    video), sent to the pool, and their faces brought back in order with track ids unique over the
    whole call and linked across segment borders."""

    def __init__(self, pool: FacePool, opts: FindOptions, first_track: int):
        self.pool, self.opts = pool, opts
        self.pad = PAD if opts.video else 0
        self.inflight: deque = deque()
        self.track_base = int(first_track)
        self.prev_tail: list[FoundFace] = []
        self.buf: list[media.Frame] = []  # the frames of the segment being filled (plus context before it)
        self.core_start = 0  # position in buf where the next segment's own frames start
        # Segments computed in this process are done when submitted: hand their faces on at once
        # (progress, parts on disk and a cancel seen per segment, not after three).
        self.max_inflight = 2 * pool.workers if pool.parallel else 0

    def run(self, frames: Iterable[media.Frame | tuple[int, np.ndarray]],
            segment: int | None) -> Iterator[tuple[media.Frame, list[FoundFace]]]:
        seg_len = None
        for item in frames:
            fr = item if isinstance(item, media.Frame) else media.Frame(int(item[0]), item[1])
            self.buf.append(fr)
            if seg_len is None:
                seg_len = _first_segment_len(fr.image, self.opts, segment)
            if len(self.buf) - self.core_start >= seg_len + self.pad:
                self.submit(final=False)
                yield from self.drain(self.max_inflight)
        if len(self.buf) > self.core_start:
            self.submit(final=True)
        yield from self.drain(0)

    def submit(self, final: bool) -> None:
        buf, pad = self.buf, self.pad
        core_end = len(buf) if final else len(buf) - pad
        lo_ctx = max(0, self.core_start - pad)
        images = [f.image for f in buf[lo_ctx:]]
        payload = (images, self.opts, self.core_start - lo_ctx, core_end - lo_ctx, 0)
        self.inflight.append((self.pool.submit(payload), buf[self.core_start:core_end], self.core_start - lo_ctx))
        keep_from = max(0, core_end - pad)
        self.buf = buf[keep_from:]
        self.core_start = core_end - keep_from

    def drain(self, block_until: int) -> Iterator[tuple[media.Frame, list[FoundFace]]]:
        while len(self.inflight) > block_until:
            fut, own, lo = self.inflight.popleft()
            result = fut.result()
            self._link(result, lo)
            own_rows = result[lo:lo + len(own)]
            if own_rows:
                self.prev_tail = own_rows[-1]
            yield from zip(own, own_rows, strict=True)

    def _link(self, result: list[list[FoundFace]], lo: int) -> None:
        """Give a segment's tracks their ids: the previous segment's last own frame is this one's
        context, so a face overlapping one there keeps that track; the others get new ids."""
        mapping: dict[int, int] = {}
        if lo > 0 and self.prev_tail is not None:
            for f in result[lo - 1]:
                best = max(self.prev_tail, key=lambda p: detect.iou(p.box, f.box), default=None)
                if best is not None and detect.iou(best.box, f.box) > 0.4:
                    mapping[f.track] = best.track
        local_max = max((f.track for row in result for f in row), default=-1)
        for row in result:
            for f in row:
                f.track = mapping.get(f.track, self.track_base + f.track)
        self.track_base += local_max + 1

    def drop(self) -> None:
        """Cancel the segments still in flight (a shared pool stays up for its other callers)."""
        for fut, _, _ in self.inflight:
            fut.cancel()
        for fut, _, _ in self.inflight:
            if not fut.cancelled():
                try:
                    fut.result()
                except Exception:  # noqa: BLE001 - nobody wants this result any more
                    pass


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
    own_pool = not isinstance(workers, FacePool)
    pool = FacePool(int(workers), opts.detector, opts.descriptors) if own_pool else workers
    segments = _Segments(pool, opts, first_track)
    try:
        yield from segments.run(frames, segment)
    finally:
        if own_pool:
            pool.close(cancel=True)
        else:
            segments.drop()
