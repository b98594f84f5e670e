"""The per-source alignments store: every processed frame and every face found in it.

Conversion puts faces back with it, training reads crop landmarks from it, a resumed extraction
skips the frames it holds.

Format (version 1) — a folder `PROJECT/alignments/SOURCEID.fpa/`:
- `meta.json`: `{"format": "facepair-alignments", "version": 1, "source": {id, path, kind, side,
  fingerprint: {size, mtime, hash, frames} (core.media.fingerprint: the file content the store describes;
  absent in stores written before it)},
  "settings": {size, coverage, center, detector, min_face, every, smooth, …}, "created": ISO time}`.
- `part-NNNNNN.npz`: one flush of processed frames (numpy .npz, read with allow_pickle=False;
  nothing in the store is ever pickled). Each part is written atomically (temp file + rename), so
  a killed extraction leaves whole parts only. Parts have increasing numbers; when two parts
  hold the same frame, the newer one wins. A writer merges its newest parts as it goes (16 into
  one, tier by tier: `Writer`), so a long extraction leaves a few dozen parts, not thousands;
  `compact()` merges all parts into one. Parts are uncompressed (`np.savez`): `load` maps them
  (core.system.npz), so a store of one part opens in the same time at any length.
Arrays of a part (F processed frames, N faces, M descriptors):
  frames (F,) int64 — every processed frame index, with or without faces
  face_frame (N,) int64, face_index (N,) int16 — which frame, which face in it (0 = leftmost at extraction; faces a `--redo-missing` adds come after a frame's earlier ones)
  box (N, 4) float32 — detector box (left, top, right, bottom) in frame pixels
  score (N,) float32 — detector score (NaN for a face carried by tracking without a detection)
  confidence (N,) float32 — the face's upright re-score (`core.faces.detect.face_score`, ≥ 0 for a face)
  tracked (N,) bool — landmarks came from tracking, not from a detection in this frame
  track (N,) int32 — a per-source track id (faces of one person in consecutive frames)
  landmarks (N, 68, 2) float32 — the landmarks used for alignment (smoothed in time for videos)
  landmarks_raw (N, 68, 2) float32 — dlib's landmarks before smoothing
  matrix (N, 2, 3) float64 — frame → crop matrix (core.faces.align conventions)
  size (N,) int32, coverage (N,) float32 — crop size and coverage of that matrix
  blur (N,) float32 — variance of the Laplacian of the crop's face region (higher = sharper)
  status (N,) int8 — 0 kept (its crop is in faces/SIDE), else the filter that dropped it (STATUS)
  descriptor_face (M,) int64, descriptor (M, 128) float32 — dlib descriptors, for the faces
      (row numbers into N) where one was computed
Crops are named `SOURCEID_FRAME_FACE.png` (`crop_name`), FRAME ≥ 6 digits, FACE 2 digits.
- `curation.json` (optional): `{"status": {"FRAME_FACE": code}}`, the user's curation decisions
  (core.faces.curation): 4 "removed" (the crop is in the side's trash: not trained on, not swapped
  by `--faces match`) or 0 "kept" (restored). `load` applies it over the parts' status. It is a
  file of its own, not a part, so curating while an extraction appends parts never collides with
  the extraction's part numbers, and the parts (what the score cache is keyed on) stay unchanged.

API: `store_path(project, source_id)`, `store_exists(...)`, `load(path)`, `load_for_source(project,
source_id) -> Alignments`, `Writer(path, meta)` (`add`, `flush`, `compact`), `crop_name`,
`parse_crop_name`, `STATUS`, `read_curation(path)`, `write_curation(path, changes)`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FacepairError
from core.system import npz
from core.system.atomic import atomic_write_json, read_json

FORMAT = "facepair-alignments"
VERSION = 1
SUFFIX = ".fpa"
META = "meta.json"
CURATION = "curation.json"
PART_RE = re.compile(r"^part-(\d{6,})\.npz$")
STATUS = {0: "kept", 1: "small", 2: "blurry", 3: "identity", 4: "removed"}  # 4: by the user (curation.json)
STATUS_CODE = {v: k for k, v in STATUS.items()}
CROP_RE = re.compile(r"^(?P<source>[A-Za-z0-9-]+)_(?P<frame>\d{6,})_(?P<face>\d{2,})\.png$")

_FACE_FIELDS = {
    "face_frame": ((), np.int64), "face_index": ((), np.int16), "box": ((4,), np.float32),
    "score": ((), np.float32), "confidence": ((), np.float32), "tracked": ((), np.bool_), "track": ((), np.int32),
    "landmarks": ((68, 2), np.float32), "landmarks_raw": ((68, 2), np.float32),
    "matrix": ((2, 3), np.float64), "size": ((), np.int32), "coverage": ((), np.float32),
    "blur": ((), np.float32), "status": ((), np.int8),
}


class AlignmentsError(FacepairError):
    """An alignments store is missing, of an unknown version, or damaged."""


def crop_name(source_id: str, frame: int, face: int) -> str:
    return f"{source_id}_{int(frame):06d}_{int(face):02d}.png"


def parse_crop_name(name: str) -> tuple[str, int, int] | None:
    """(source id, frame, face) of a crop file name, or None when it is not one."""
    m = CROP_RE.match(Path(name).name)
    if not m:
        return None
    return m["source"], int(m["frame"]), int(m["face"])


def store_path(project, source_id: str) -> Path:
    return Path(project.alignments_dir) / f"{source_id}{SUFFIX}"


def store_exists(project, source_id: str) -> bool:
    return (store_path(project, source_id) / META).is_file()


@dataclass
class Face:
    """One face of one frame, as the extraction writes it (see the module notes for each field)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    landmarks_raw: np.ndarray
    matrix: np.ndarray
    size: int
    coverage: float
    blur: float = float("nan")
    status: int = 0
    tracked: bool = False
    track: int = -1
    descriptor: np.ndarray | None = None
    confidence: float = float("nan")


@dataclass
class Alignments:
    """A loaded store: column arrays over faces, sorted by (frame, face index)."""

    path: Path
    meta: dict
    frames: np.ndarray
    faces: dict[str, np.ndarray]
    descriptor_face: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    descriptors: np.ndarray = field(default_factory=lambda: np.zeros((0, 128), np.float32))

    def __len__(self) -> int:
        return len(self.faces["face_frame"])

    def __getattr__(self, name: str):
        faces = self.__dict__.get("faces")
        if faces is not None and name in faces:
            return faces[name]
        raise AttributeError(name)

    @property
    def source_id(self) -> str:
        return str(self.meta.get("source", {}).get("id") or self.path.name.removesuffix(SUFFIX))

    @property
    def settings(self) -> dict:
        return dict(self.meta.get("settings", {}))

    def processed(self, frame: int) -> bool:
        i = np.searchsorted(self.frames, frame)
        return bool(i < len(self.frames) and self.frames[i] == frame)

    def faces_in(self, frame: int) -> np.ndarray:
        """Row numbers of the faces of one frame (empty when none or not processed)."""
        ff = self.faces["face_frame"]
        lo, hi = np.searchsorted(ff, frame, "left"), np.searchsorted(ff, frame, "right")
        return np.arange(lo, hi)

    def row(self, frame: int, face: int) -> int | None:
        for r in self.faces_in(frame):
            if int(self.faces["face_index"][r]) == face:
                return int(r)
        return None

    def name(self, row: int) -> str:
        return crop_name(self.source_id, int(self.faces["face_frame"][row]), int(self.faces["face_index"][row]))

    def descriptor(self, row: int) -> np.ndarray | None:
        i = np.searchsorted(self.descriptor_face, row)
        if i < len(self.descriptor_face) and self.descriptor_face[i] == row:
            return self.descriptors[i]
        return None

    def counts(self) -> dict[str, int]:
        st = self.faces["status"]
        return {STATUS[k]: int((st == k).sum()) for k in STATUS}


# ---- reading ---------------------------------------------------------------------------------

def _parts(path: Path) -> list[tuple[int, Path]]:
    out = []
    for p in path.iterdir() if path.is_dir() else ():
        m = PART_RE.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def _empty_faces(n: int = 0) -> dict[str, np.ndarray]:
    return {k: np.zeros((n, *shape), dtype) for k, (shape, dtype) in _FACE_FIELDS.items()}


def read_meta(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        meta = read_json(path / META)
    except FileNotFoundError:
        raise AlignmentsError(f"{path}: no alignments store here (run `facepair extract`)") from None
    except ValueError as e:
        raise AlignmentsError(f"{path / META} is damaged: {e}") from None
    if meta.get("format") != FORMAT:
        raise AlignmentsError(f"{path / META} is not a facepair alignments store")
    if int(meta.get("version", 0)) > VERSION:
        raise AlignmentsError(f"{path} is alignments format {meta.get('version')}, newer than this facepair "
                              f"({VERSION}); upgrade facepair")
    return meta


def _read_part(p: Path) -> dict[str, np.ndarray]:
    """A part's arrays, mapped (core.system.npz: nothing is read until used); FileNotFoundError
    passes through (a part merged away since the folder was listed)."""
    try:
        return npz.read_npz(p)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise AlignmentsError(f"{p}: damaged alignments part ({e}); delete it to re-extract those frames") from None


def _read_parts(path: Path) -> list[dict[str, np.ndarray]]:
    """Every part's arrays, oldest first. A writer merges its newest parts as it goes, so a part
    listed here may be gone when it is opened: the folder is then listed again."""
    for _attempt in range(5):
        try:
            return [_read_part(p) for _, p in _parts(path)]
        except FileNotFoundError:
            continue
    raise AlignmentsError(f"{path}: its parts kept changing while they were read; try again")


def _combine(parts: list[dict[str, np.ndarray]]):
    """(frames, faces, descriptor_face, descriptors) of parts, newest winning frame by frame, faces
    in (frame, face) order. A single part in order is used as it is (no copy of its columns)."""
    if not parts:
        return np.zeros(0, np.int64), _empty_faces(), np.zeros(0, np.int64), np.zeros((0, 128), np.float32)
    # Which part owns each frame: the newest one that lists it (only matters when parts overlap).
    all_frames = np.concatenate([d["frames"].astype(np.int64) for d in parts])
    uniq = np.unique(all_frames)
    frame_owner = None
    if len(uniq) < len(all_frames):
        owner = np.concatenate([np.full(len(d["frames"]), i) for i, d in enumerate(parts)])
        frame_owner = np.full(len(uniq), -1)
        np.maximum.at(frame_owner, np.searchsorted(uniq, all_frames), owner)

    cols: dict[str, list[np.ndarray]] = {k: [] for k in _FACE_FIELDS}
    dface, desc = [], []
    offset = 0
    for i, d in enumerate(parts):
        n = len(d["face_frame"])
        keep = None  # all rows, no copy
        if frame_owner is not None and n:
            keep = frame_owner[np.searchsorted(uniq, d["face_frame"].astype(np.int64))] == i
        kept = n if keep is None else int(keep.sum())
        for k in _FACE_FIELDS:
            col = _column(d, k, n)
            cols[k].append(col if keep is None else col[keep])
        if "descriptor_face" in d and len(d["descriptor_face"]):
            df = d["descriptor_face"].astype(np.int64)
            if keep is None:
                dface.append(df + offset)
                desc.append(d["descriptor"])
            else:
                new_index = np.cumsum(keep) - 1 + offset
                sel = keep[df]
                dface.append(new_index[df[sel]])
                desc.append(d["descriptor"][sel])
        offset += kept
    faces = {k: (v[0] if len(v) == 1 else np.concatenate(v)) for k, v in cols.items()}
    ff, fi = faces["face_frame"], faces["face_index"]
    if not _in_face_order(ff, fi):
        order = np.lexsort((fi, ff))
        faces = {k: v[order] for k, v in faces.items()}
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        dface = [inverse[x] for x in dface]
    descriptor_face = np.concatenate(dface) if dface else np.zeros(0, np.int64)
    descriptors = np.concatenate(desc) if desc else np.zeros((0, 128), np.float32)
    o = np.argsort(descriptor_face, kind="stable")
    return uniq, faces, descriptor_face[o].astype(np.int64), descriptors[o].astype(np.float32)


def _column(d: dict[str, np.ndarray], k: str, n: int) -> np.ndarray:
    """Face column `k` of a part as its declared dtype; a field added after the part was written
    comes back as NaN where it can be, else 0."""
    shape, dtype = _FACE_FIELDS[k]
    if k in d:
        return d[k].astype(dtype, copy=False)
    return np.full((n, *shape), np.nan if np.issubdtype(dtype, np.floating) else 0, dtype)


def _in_face_order(ff: np.ndarray, fi: np.ndarray) -> bool:
    return len(ff) < 2 or bool(np.all((ff[1:] > ff[:-1]) | ((ff[1:] == ff[:-1]) & (fi[1:] > fi[:-1]))))


def load(path: str | os.PathLike) -> Alignments:
    """Load a store folder. Later parts override earlier ones frame by frame.

    The columns of a store of one part (every finished extraction's) are views of the mapped part
    file: opening costs the same at any length, and only the rows used are read from disk."""
    path = Path(path)
    meta = read_meta(path)
    frames, faces, descriptor_face, descriptors = _combine(_read_parts(path))
    faces["status"] = np.array(faces["status"])  # curation changes it: this process's own copy
    _apply_curation(faces, read_curation(path))
    return Alignments(path, meta, frames.astype(np.int64), faces, descriptor_face, descriptors)


def read_curation(path: str | os.PathLike) -> dict[tuple[int, int], int]:
    """The user's status decisions of a store ((frame, face) → code); {} when there are none."""
    try:
        data = read_json(Path(path) / CURATION)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise AlignmentsError(f"{Path(path) / CURATION} is damaged ({e}): restore it from the trash's log "
                              f"or delete it (every removed face then counts as kept again)") from None
    out = {}
    for key, code in (data.get("status") or {}).items():
        frame, _, face = str(key).partition("_")
        if frame.isdigit() and face.isdigit() and int(code) in STATUS:
            out[(int(frame), int(face))] = int(code)
    return out


def write_curation(path: str | os.PathLike, changes: dict[tuple[int, int], int]) -> None:
    """Record status decisions ((frame, face) → code, 0 or 4) in a store's curation.json (atomic)."""
    current = read_curation(path)
    current.update({(int(f), int(i)): int(c) for (f, i), c in changes.items()})
    status = {f"{f}_{i}": c for (f, i), c in sorted(current.items())}
    atomic_write_json(Path(path) / CURATION, {"status": status})


def _apply_curation(faces: dict[str, np.ndarray], decisions: dict[tuple[int, int], int]) -> None:
    """Set the status of the decided faces in place (decisions for faces the store lacks are ignored)."""
    if not decisions or not len(faces["face_frame"]):
        return
    keys = (faces["face_frame"].astype(np.int64) << 16) + faces["face_index"].astype(np.int64)
    wanted = np.array([(f << 16) + i for f, i in decisions], np.int64)
    codes = np.array(list(decisions.values()), np.int8)
    pos = np.searchsorted(keys, wanted)  # keys are sorted: (frame, face) order
    hit = (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == wanted)
    faces["status"][pos[hit]] = codes[hit]


def load_for_source(project, source_id: str) -> Alignments:
    """The store of one source of a project; AlignmentsError naming `facepair extract` if absent."""
    path = store_path(project, source_id)
    if not (path / META).is_file():
        raise AlignmentsError(f"source {source_id} of project {project.name!r} has no alignments yet: "
                              f"run `facepair extract {project.name}`")
    return load(path)


# ---- writing ---------------------------------------------------------------------------------

class Writer:
    """Appends processed frames to a store, one atomic part per `flush()`.

    `Writer(path, meta)` creates the store (meta.json) if it does not exist; an existing store
    keeps its meta. Frames added and not yet flushed are lost if the process dies: the extraction
    redoes them.

    Parts stay few however long the input: every MERGE_PARTS parts of one tier that this writer
    wrote in a row are merged into one part of the next tier (16 flushes → 1, 16 of those → 1, …),
    so a store being written (or left by a killed run) opens as fast as a finished one. A merge
    streams the columns part by part (`core.system.npz.write_npz`), so it never holds more than
    one part's column in memory; so does `compact()` at the end.
    """

    def __init__(self, path: str | os.PathLike, meta: dict | None = None):
        self.path = Path(path)
        if not (self.path / META).is_file():
            if meta is None:
                raise AlignmentsError(f"{self.path}: no store here and no meta to create one")
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path / META, {**meta, "format": FORMAT, "version": VERSION})
        self.meta = read_meta(self.path)
        parts = _parts(self.path)
        self._next = (parts[-1][0] + 1) if parts else 0
        self._frames: list[int] = []
        self._faces: list[tuple[int, int, Face]] = []
        self._tiers: list[tuple[int, Path]] = []  # the parts this writer wrote, newest last, with their tier

    @property
    def pending(self) -> int:
        return len(self._frames)

    def add(self, frame: int, faces: Sequence[Face]) -> None:
        """Record one processed frame and its faces (face index = position in `faces`)."""
        self._frames.append(int(frame))
        for i, f in enumerate(faces):
            self._faces.append((int(frame), i, f))

    def flush(self) -> Path | None:
        """Write the pending frames as one part; returns the part that holds them (None when nothing
        was pending)."""
        if not self._frames:
            return None
        arrays = _pack(self._frames, self._faces)
        path = self._write_part(arrays)
        self._frames, self._faces = [], []
        self._tiers.append((0, path))
        return self._merge_tail() or path

    def _new_part(self) -> Path:
        path = self.path / f"part-{self._next:06d}.npz"
        self._next += 1
        return path

    def _write_part(self, arrays: dict[str, np.ndarray]) -> Path:
        path = self._new_part()
        npz.save_npz(path, arrays)
        return path

    def _merge_tail(self) -> Path | None:
        """Merge the newest MERGE_PARTS parts while they are of one tier; the last part made, or None."""
        made = None
        while len(self._tiers) >= MERGE_PARTS and len({t for t, _ in self._tiers[-MERGE_PARTS:]}) == 1:
            tier = self._tiers[-1][0]
            made = self._merge([p for _, p in self._tiers[-MERGE_PARTS:]])
            self._tiers[-MERGE_PARTS:] = [(tier + 1, made)]
        return made

    def _merge(self, paths: list[Path]) -> Path:
        """`paths` (oldest first, the newest parts of the store) as one new part. It is written
        before they are deleted: a crash between leaves the same frames twice, the newer winning."""
        parts = [_read_part(p) for p in paths]
        dest = self._new_part()
        columns = _columns_in_order(parts)
        if columns is not None:
            npz.write_npz(dest, columns)
        else:  # overlapping or unordered frames: resolved in memory
            frames, faces, dface, desc = _combine(parts)
            npz.save_npz(dest, {"frames": frames, **faces, "descriptor_face": dface, "descriptor": desc})
        for p in paths:
            p.unlink(missing_ok=True)
        return dest

    def compact(self) -> None:
        """Merge every part into one (flushes first). A crash midway leaves a loadable store."""
        self.flush()
        parts = _parts(self.path)
        if len(parts) > 1:
            self._merge([p for _, p in parts])
        self._tiers = []


MERGE_PARTS = 16


def _columns_in_order(parts: list[dict[str, np.ndarray]]) -> dict | None:
    """The parts' columns laid end to end, as `npz.write_npz` takes them, when the parts hold
    disjoint, increasing frames with their faces in (frame, face) order (as an extraction writes
    them); None otherwise."""
    last = -1
    for d in parts:
        fr, ff = d["frames"], d["face_frame"]
        fi = _column(d, "face_index", len(ff))
        df = d.get("descriptor_face", np.zeros(0, np.int64))
        if not len(fr) or fr[0] <= last or np.any(np.diff(fr) <= 0) or not _in_face_order(ff, fi):
            return None
        if len(ff) and (ff[0] < fr[0] or ff[-1] > fr[-1]):
            return None
        if len(df) and (np.any(np.diff(df) <= 0) or df[0] < 0 or df[-1] >= len(ff)):
            return None
        last = fr[-1]
    faces_in = [len(d["face_frame"]) for d in parts]
    offsets = np.cumsum([0, *faces_in[:-1]])
    descs = [d.get("descriptor_face", np.zeros(0, np.int64)) for d in parts]
    n_desc = sum(len(x) for x in descs)
    columns: dict = {"frames": (np.int64, (sum(len(d["frames"]) for d in parts),), [d["frames"] for d in parts])}
    for k, (shape, dtype) in _FACE_FIELDS.items():
        columns[k] = (dtype, (sum(faces_in), *shape), _column_chunks(parts, k, faces_in))
    columns["descriptor_face"] = (np.int64, (n_desc,), (x.astype(np.int64) + o for x, o in zip(descs, offsets, strict=True)))
    columns["descriptor"] = (np.float32, (n_desc, 128),
                             (d.get("descriptor", np.zeros((0, 128), np.float32)).reshape(-1, 128) for d in parts))
    return columns


def _column_chunks(parts: list[dict[str, np.ndarray]], k: str, faces_in: list[int]):
    """Face column `k` of each part in turn (made when it is read: a missing field's fill too)."""
    for d, n in zip(parts, faces_in, strict=True):
        yield _column(d, k, n)


def _pack(frames: list[int], faces: list[tuple[int, int, Face]]) -> dict[str, np.ndarray]:
    n = len(faces)
    out = _empty_faces(n)
    dface, desc = [], []
    for row, (frame, idx, f) in enumerate(faces):
        out["face_frame"][row] = frame
        out["face_index"][row] = idx
        out["box"][row] = f.box
        out["score"][row] = f.score
        out["confidence"][row] = f.confidence
        out["tracked"][row] = f.tracked
        out["track"][row] = f.track
        out["landmarks"][row] = f.landmarks
        out["landmarks_raw"][row] = f.landmarks_raw
        out["matrix"][row] = f.matrix
        out["size"][row] = f.size
        out["coverage"][row] = f.coverage
        out["blur"][row] = f.blur
        out["status"][row] = f.status
        if f.descriptor is not None:
            dface.append(row)
            desc.append(np.asarray(f.descriptor, np.float32))
    out["frames"] = np.asarray(sorted(set(frames)), np.int64)
    out["descriptor_face"] = np.asarray(dface, np.int64)
    out["descriptor"] = np.asarray(desc, np.float32).reshape(-1, 128)
    return out


def remove(project, source_id: str) -> None:
    """Delete a source's store (for a fresh extraction)."""
    import shutil

    shutil.rmtree(store_path(project, source_id), ignore_errors=True)


def meta_for(source, settings: dict, fingerprint: dict | None = None) -> dict:
    """A new store's meta; `fingerprint` (core.media.fingerprint) records which file content it describes."""
    from core.system.clock import now_iso

    src = {"id": source.id, "path": source.path, "kind": source.kind, "side": source.side}
    if fingerprint is not None:
        src["fingerprint"] = fingerprint
    return {"source": src, "settings": settings, "created": now_iso()}



def crop_geometry(project, side: str) -> tuple[float, tuple[float, float]]:
    """(coverage, center) of a side's extracted crops (from the first source's extraction settings)."""
    from core.faces import align

    for src in project.sources_of(side):
        try:
            settings = read_meta(store_path(project, src.id)).get("settings", {})
        except AlignmentsError:
            continue
        if "coverage" in settings:
            center = settings.get("center") or align.CENTER
            return float(settings["coverage"]), (float(center[0]), float(center[1]))
    return align.COVERAGE, tuple(align.CENTER)
