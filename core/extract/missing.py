"""Frames an extraction left without a face, and where a face's track was lost: what
`facepair missing` lists and `facepair extract --redo-missing` re-detects (core.extract.redo).

Pure functions over a loaded alignments store (core.faces.alignments.Alignments); only processed
frames count (a frame the store does not hold was never looked at: `facepair extract` resumes it).

- A frame *has a face* when the store keeps a face there (status 0: trained on, swapped). A frame
  whose faces were all dropped (too small, blurry, another person) or removed by the user has
  none: each run counts such frames by reason (`dropped`), so the list says why. A redo never
  brings a removed face back (core.extract.redo), but it may find another face in that frame.
- *No-face runs*: consecutive processed frames (at the store's `every`) without a face.
- *Lost-track runs* (videos): the frames between two kept appearances of one face where it is
  absent: a track whose kept faces stop and start again, or a track that ends and another one that
  begins within `LOST_MAX_GAP_S` seconds where it ended (box centres within one face size) — dlib's
  tracker starts a new track id when it re-finds a face. Those frames may hold other faces (a
  second person), so they are not always no-face frames.
- Stills (an image, a folder): each image without a face; runs of consecutive images, with their
  file names; a still has no tracks.

Times are `frame / fps` in seconds (None when the rate is unknown).

API: `Run`, `SourceMissing`, `no_face_runs(a, fps, names)`, `lost_track_runs(a, fps)`,
`find_missing(a, kind, fps=None, names=None) -> SourceMissing`, `runs_of(frames, step)`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.faces import alignments as store

LOST_MAX_GAP_S = 2.0  # a face gone longer than this is a new appearance, not a lost track
FPS_UNKNOWN = 25.0  # what the gap limit assumes when a video's rate is unknown
KEPT = store.STATUS_CODE["kept"]


@dataclass(frozen=True)
class Run:
    """Consecutive processed frames: `frames` (their indices), with their times and why they hold no
    face (`dropped`: frames with a face of that status and none kept). `tracks`: a lost-track run's
    track before and after the gap; `names`: a still's file names."""

    frames: tuple[int, ...]
    fps: float | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    tracks: tuple[int, int] | None = None
    names: tuple[str, ...] = ()

    @property
    def start(self) -> int:
        return self.frames[0]

    @property
    def end(self) -> int:
        return self.frames[-1]

    @property
    def count(self) -> int:
        return len(self.frames)

    def time(self, frame: int) -> float | None:
        return round(frame / self.fps, 3) if self.fps else None

    def as_dict(self) -> dict:
        d = {"start": self.start, "end": self.end, "count": self.count, "start_s": self.time(self.start),
             "end_s": self.time(self.end), "dropped": dict(self.dropped)}
        if self.tracks is not None:
            d["tracks"] = list(self.tracks)
        if self.names:
            d["names"] = list(self.names)
        return d


@dataclass
class SourceMissing:
    """One source's no-face and lost-track runs, over its `frames` processed frames."""

    source_id: str
    kind: str
    frames: int
    fps: float | None
    no_face: list[Run]
    lost: list[Run]

    def to_redo(self) -> list[int]:
        """Every frame of either list, once, in order: what `--redo-missing` re-detects."""
        return sorted({f for run in (*self.no_face, *self.lost) for f in run.frames})

    def as_dict(self) -> dict:
        return {"source": self.source_id, "kind": self.kind, "frames": self.frames, "fps": self.fps,
                "no_face_frames": sum(r.count for r in self.no_face), "no_face": [r.as_dict() for r in self.no_face],
                "lost_frames": sum(r.count for r in self.lost), "lost": [r.as_dict() for r in self.lost],
                "to_redo": len(self.to_redo())}


def runs_of(frames: Sequence[int], step: int = 1) -> list[list[int]]:
    """Sorted frame indices cut into runs of consecutive ones (`step` apart: the store's `every`)."""
    out: list[list[int]] = []
    for f in frames:
        if out and f - out[-1][-1] == step:
            out[-1].append(int(f))
        else:
            out.append([int(f)])
    return out


def _step(a: store.Alignments, kind: str) -> int:
    return max(1, int(a.settings.get("every") or 1)) if kind == "video" else 1


def _frames_with(a: store.Alignments, status: np.ndarray) -> np.ndarray:
    """The sorted frames holding a face whose status is in `status` (face_frame is sorted)."""
    f = a.face_frame[np.isin(a.status, status)]
    return f[np.r_[True, f[1:] != f[:-1]]] if len(f) else f


def _status_frames(a: store.Alignments) -> dict[str, np.ndarray]:
    """For each status but kept: the sorted frames that hold a face of it."""
    return {name: _frames_with(a, [code]) for code, name in store.STATUS.items() if code != KEPT}


def _dropped(by_status: dict[str, np.ndarray], frames: Sequence[int]) -> dict[str, int]:
    """How many of a run's frames hold a face of each status but kept (a run's frames are every
    processed frame from its start to its end, so counting that range is exact)."""
    out = {}
    for name, have in by_status.items():
        n = int(np.searchsorted(have, frames[-1], "right") - np.searchsorted(have, frames[0], "left"))
        if n:
            out[name] = n
    return out


def no_face_runs(a: store.Alignments, fps: float | None = None, names: Sequence[str] | None = None,
                 kind: str = "video") -> list[Run]:
    """Runs of processed frames without a kept face (module notes). `names`: a folder's file
    names in index order (stills)."""
    empty = a.frames[~np.isin(a.frames, _frames_with(a, [KEPT]), assume_unique=True)]
    by_status = _status_frames(a)
    runs = []
    for frames in runs_of(empty.tolist(), _step(a, kind)):
        labels = tuple(names[f] for f in frames if 0 <= f < len(names)) if names is not None else ()
        runs.append(Run(tuple(frames), fps if kind == "video" else None, _dropped(by_status, frames), names=labels))
    return runs


@dataclass
class _Appearance:
    """Consecutive processed frames in which one track has a kept face."""

    track: int
    first: int  # positions in the store's processed frames
    last: int
    first_box: np.ndarray
    last_box: np.ndarray


def _appearances(a: store.Alignments, step: int) -> list[_Appearance]:
    rows = np.flatnonzero(a.status == KEPT)
    pos = np.searchsorted(a.frames, a.face_frame[rows])
    tracks = a.track[rows]
    order = np.lexsort((pos, tracks))  # by track, then frame
    rows, pos, tracks = rows[order], pos[order], tracks[order]
    frames = a.frames[pos]
    # An appearance ends where the track changes or the next kept face is not in the next processed frame.
    ends = (tracks[1:] != tracks[:-1]) | (pos[1:] - pos[:-1] != 1) | (frames[1:] - frames[:-1] != step)
    starts = np.concatenate([[0], np.flatnonzero(ends) + 1]) if len(rows) else np.zeros(0, np.int64)
    stops = np.concatenate([starts[1:] - 1, [len(rows) - 1]]) if len(rows) else np.zeros(0, np.int64)
    out = [_Appearance(int(tracks[i]), int(pos[i]), int(pos[k]), a.box[rows[i]], a.box[rows[k]])
           for i, k in zip(starts.tolist(), stops.tolist(), strict=True)]
    return sorted(out, key=lambda p: (p.first, p.track))


def _near(box, other) -> bool:
    """Two boxes of one face: centres within the larger face's size."""
    x0, y0, x1, y1 = (float(v) for v in box)
    u0, v0, u1, v1 = (float(v) for v in other)
    size = max(x1 - x0, y1 - y0, u1 - u0, v1 - v0)
    return math.hypot((x0 + x1 - u0 - u1) / 2, (y0 + y1 - v0 - v1) / 2) <= size


def _covered(a: store.Alignments, positions: range, box: np.ndarray) -> set[int]:
    """Positions (in the processed frames) where a kept face sits near `box`."""
    out = set()
    for p in positions:
        rows = a.faces_in(int(a.frames[p]))
        if any(a.status[r] == KEPT and _near(a.box[r], box) for r in rows):
            out.add(p)
    return out


def lost_track_runs(a: store.Alignments, fps: float | None = None, max_gap_s: float = LOST_MAX_GAP_S) -> list[Run]:
    """A video's lost-track runs (module notes), in frame order."""
    step = _step(a, "video")
    max_gap = max(1, int(round(max_gap_s * (fps or FPS_UNKNOWN) / step)))
    apps = _appearances(a, step)
    firsts = [b.first for b in apps]
    by_status = _status_frames(a)
    runs = []
    for app in apps:
        window = apps[bisect.bisect_right(firsts, app.last + 1):bisect.bisect_right(firsts, app.last + 1 + max_gap)]
        later = [b for b in window if b.track == app.track or _near(app.last_box, b.first_box)]
        if not later:
            continue
        nxt = min(later, key=lambda b: (b.first, b.track != app.track))
        gap = range(app.last + 1, nxt.first)
        if int(a.frames[nxt.first] - a.frames[app.last]) != step * (len(gap) + 1):
            continue  # frames the store lacks in between: not one gap
        covered = _covered(a, gap, app.last_box) | _covered(a, gap, nxt.first_box)
        for frames in runs_of([int(a.frames[p]) for p in gap if p not in covered], step):
            runs.append(Run(tuple(frames), fps, _dropped(by_status, frames), tracks=(app.track, nxt.track)))
    return sorted(runs, key=lambda r: (r.start, r.tracks))


def find_missing(a: store.Alignments, kind: str, fps: float | None = None,
                 names: Sequence[str] | None = None) -> SourceMissing:
    """A source's no-face runs and (videos) lost-track runs."""
    video = kind == "video"
    return SourceMissing(a.source_id, kind, len(a.frames), fps if video else None,
                         no_face_runs(a, fps, names, kind), lost_track_runs(a, fps) if video else [])
