"""Where a conversion's frames and their faces come from: the project's alignments store when the
input is an extracted source whose store holds every frame asked for and still describes the file,
else the extraction pipeline's face finder on the fly. `FrameWork`/`FaceWork` carry a frame and its
faces through the stages.

May import core.extract (the face finder), core.faces, core.media and core.errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FacepairError


@dataclass
class FaceWork:
    landmarks: np.ndarray  # (68, 2) frame pixels
    track: int | None = None
    descriptor: np.ndarray | None = None  # when the alignments store already has one
    matrix: np.ndarray | None = None  # frame → model crop
    crop: np.ndarray | None = None  # (R, R, 3) uint8, fed to the model
    rgb: np.ndarray | None = None  # (R, R, 3) float32, the model's face
    mask: np.ndarray | None = None  # (R, R) float32, the model's mask
    removed: bool = False  # the user removed this detection from the side (curation): not the person


@dataclass
class FrameWork:
    index: int
    image: np.ndarray
    name: str = ""
    faces: list[FaceWork] = field(default_factory=list)  # the faces to swap
    found: int = 0  # faces found in the frame
    other: int = 0  # faces left alone: another person


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
    """A frame's faces as the store holds them; those the user removed (status 4) are marked."""
    from core.faces.alignments import STATUS_CODE

    out = []
    for r in a.faces_in(frame_index):
        track = int(a.track[r])
        desc = a.descriptor(int(r))
        if desc is None and track_descriptors is not None:
            desc = track_descriptors.get(track)
        out.append(FaceWork(landmarks=np.asarray(a.landmarks[r], np.float32), track=track, descriptor=desc,
                            removed=bool(a.status[r] == STATUS_CODE["removed"])))
    return out


def track_descriptors(a) -> dict[int, np.ndarray]:
    """The stored descriptor of each track (the extraction computes one per track and segment)."""
    out: dict[int, np.ndarray] = {}
    for row, desc in zip(a.descriptor_face.tolist(), a.descriptors, strict=True):
        out.setdefault(int(a.track[row]), desc)
    return out


# ---- frame sources -------------------------------------------------------------------------------

def frames_from_store(frames, a) -> Iterator[FrameWork]:
    tracks = track_descriptors(a)
    for fr in frames:
        yield FrameWork(fr.index, fr.image, fr.name, faces=store_faces(a, fr.index, tracks))


def frames_detected(frames, video: bool, detector: str = "hog", descriptors: bool = False,
                    workers: int | None = None) -> Iterator[FrameWork]:
    """Faces found on the fly by the extraction pipeline's face finder (`core.extract.finder.find_faces`):
    tracked with smoothed landmarks in a video, every face of every still for images. With
    `descriptors`, each track gets a dlib descriptor per segment (for the identity match)."""
    from core.extract import finder as extract

    opts = extract.FindOptions(detector=detector, video=video, descriptors=descriptors)
    workers = extract.default_workers() if workers is None else workers
    for fr, found in extract.find_faces(frames, opts, workers=workers):
        yield FrameWork(fr.index, fr.image, fr.name, faces=[
            FaceWork(landmarks=np.asarray(f.landmarks, np.float32), track=int(f.track),
                     descriptor=f.track_descriptor if f.track_descriptor is not None else f.descriptor)
            for f in found])


class TrackBreak:
    """Wraps a frame iterator: a decoding error after some frames ends the stream and is recorded."""

    def __init__(self, frames, counters):
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
