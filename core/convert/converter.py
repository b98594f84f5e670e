"""The Converter: the project's model, the merge options and the four threaded stages of a conversion.

    frames (decode + find faces) → swap (batched, on the device) → merge + label → sink (encode)

Each arrow is a bounded queue and each stage runs in its own thread (`Pipeline`), so decoding,
inference, merging and encoding overlap and the slowest stage sets the pace (numpy, OpenCV, JAX and
the ffmpeg pipe all release the GIL while they work).

May import core.convert.{plan,sources,identity,merge}, core.faces, core.media, core.train and core.errors.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from core.convert import options
from core.convert.identity import IdentityMatcher, reference_descriptors
from core.convert.merge import MergeOptions
from core.convert.plan import ConvertError, replaced_side
from core.convert.sources import FaceWork, FrameWork
from core.errors import JobCancelled
from core.faces.alignments import crop_geometry
from core.media import label as labels

DEFAULT_BATCH = options.BATCH_DEFAULT
QUEUE_FRAMES = 8  # frames buffered between two stages (bounds memory for any video length)
QUEUE_BYTES = 64 << 20  # … or fewer, for large frames
HOLD_BYTES = 256 << 20  # frames the swap stage may hold while it gathers a batch of faces


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

    def wait(self, on_tick: Callable[[], None] | None = None, cancelled: Callable[[], bool] | None = None) -> None:
        """Until every stage is done, calling `on_tick` meanwhile; JobCancelled once `cancelled()`
        says so; the first stage error re-raised. Every stage is stopped on the way out."""
        try:
            while self.alive():
                if cancelled is not None and cancelled():
                    self.stop.set()
                    self.join()
                    raise JobCancelled()
                if on_tick is not None:
                    on_tick()
                for t in self.threads:
                    t.join(timeout=0.1)
                    if t.is_alive():
                        break
        except BaseException:
            self.stop.set()
            self.join()
            raise
        self.join()
        if self.error is not None:
            raise self.error


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
        for name, target in (("source", lambda: self._source(p, frames, q_found)),
                             ("swap", lambda: self._swapper(p, q_found, q_swapped)),
                             ("merge", lambda: self._merger(p, q_swapped, q_merged)),
                             ("encode", lambda: self._encoder(p, q_merged, sink))):
            p.spawn(name, target)
        p.wait(on_tick, cancelled)
        return p

    def _source(self, p: Pipeline, frames: Iterator[FrameWork], q_out: queue.Queue) -> None:
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
            p.put(q_out, frame)
        p.put(q_out, _END)

    def _swapper(self, p: Pipeline, q_in: queue.Queue, q_out: queue.Queue) -> None:
        # Faces wait until a full batch is gathered (one compiled shape, full device batches);
        # frames before the first waiting face go straight on, and a long stretch of frames
        # without faces flushes a partial batch so memory stays bounded.
        pending: list[FrameWork] = []
        faces = held = 0
        while True:
            item = p.get(q_in)
            if item is _END:
                break
            if not pending and not item.faces:
                p.put(q_out, item)
                continue
            pending.append(item)
            faces += len(item.faces)
            held += item.image.nbytes
            if faces >= self.batch or held >= HOLD_BYTES:
                self._flush(p, pending, q_out)
                pending, faces, held = [], 0, 0
        if pending:
            self._flush(p, pending, q_out)
        p.put(q_out, _END)

    def _flush(self, p: Pipeline, pending: list[FrameWork], q_out: queue.Queue) -> None:
        t0 = time.perf_counter()
        self.swap(pending)
        p.add_busy("infer", time.perf_counter() - t0)
        for fr in pending:
            p.put(q_out, fr)

    def _merger(self, p: Pipeline, q_in: queue.Queue, q_out: queue.Queue) -> None:
        while True:
            item = p.get(q_in)
            if item is _END:
                break
            t0 = time.perf_counter()
            out = self.merge(item)
            p.add_busy("merge", time.perf_counter() - t0)
            p.put(q_out, (item, out))
        p.put(q_out, _END)

    def _encoder(self, p: Pipeline, q_in: queue.Queue, sink: Callable[[FrameWork, np.ndarray], None]) -> None:
        while True:
            item = p.get(q_in)
            if item is _END:
                break
            frame, out = item
            t0 = time.perf_counter()
            sink(frame, out)
            p.add_busy("encode", time.perf_counter() - t0)
            self.count(frame)
            self.counters.frames_out += 1


# ---- the model -------------------------------------------------------------------------------------

_swappers: dict[tuple, object] = {}


def load_swapper(project, warn=None, engine: str = "jax", weights: str = "ema"):
    """The project's trained model (core.train.model_io); a clear error naming `facepair train` when absent.
    A damaged newest checkpoint is moved aside and the newest intact one used; `warn(text)` says so.
    `engine` "onnx": the exported graph run by ONNX Runtime (core/export/engine.py) instead of JAX.
    `weights` "ema" (default): the moving average of the weights when the model keeps one; "raw": the
    last step's weights (the JAX engine only: the ONNX graph is exported from the default).

    Kept per process while the model's status.json is unchanged, so conversions run in one process
    (tests, scripts) load and compile the model once.
    """
    from core.train import model_io

    status = project.model_dir / "status.json"
    try:
        st = status.stat()
        key = (str(project.model_dir.resolve()), st.st_mtime_ns, st.st_size, engine, weights)
    except OSError:
        key = None
    if key is not None and key in _swappers:
        return _swappers[key]
    if engine == "onnx" and weights != "ema":
        raise ConvertError(f"--weights {weights} runs in JAX only (the ONNX engine runs the exported graph of the "
                           f"default weights): use --engine jax")
    if engine == "onnx":
        from core.export.engine import load_onnx_swapper

        swapper = load_onnx_swapper(project, warn=warn)
    else:
        swapper = model_io.load_swapper(project, warn=warn, weights=weights)
    if key is not None:
        _swappers.clear()  # one model at a time: a retrained model replaces the old one
        _swappers[key] = swapper
    return swapper


def make_converter(project, direction: str, options: MergeOptions, faces: str, label: bool, swapper=None,
                   batch: int = DEFAULT_BATCH, warn=None, engine: str = "jax", weights: str = "ema") -> Converter:
    """A Converter for the project's model (loaded with `engine` unless given), checked against the options."""
    side = replaced_side(direction)
    if swapper is None:
        swapper = load_swapper(project, warn=warn, engine=engine, weights=weights)
    if options.mask == "learned" and not getattr(swapper, "has_mask", False):
        raise ConvertError(f"--mask learned needs a model with a learned mask, and preset "
                           f"{getattr(swapper, 'preset', '?')!r} has none: use --mask hull")
    matcher = IdentityMatcher(reference_descriptors(project, side)) if faces == "match" else None
    coverage, center = crop_geometry(project, side)
    if getattr(swapper, "coverage", None):
        coverage = swapper.coverage  # the model's own crop (a sub-crop of the extracted ones)
    return Converter(swapper, direction, options, matcher=matcher, coverage=coverage, center=center,
                     visible_label=bool(label), batch=batch)
