"""A side's aligned faces as arrays, for training, evaluation and fitting.

`load_faceset(project, side, size=None) -> FaceSet` reads `faces/SIDE/*.png` (the crops the user
kept: deleting a crop from that folder removes it from training; the trash, `faces/SIDE/.trash/`,
is never read) and, from each crop's source alignments store, its 68 landmarks in crop pixels. A
crop whose store records it as removed (status 4, core.faces.curation) is skipped even when its
file is back in the folder by hand: restore it with `facepair faces restore`. Masks are the landmarks' convex hull (jaw to
eyebrows). No dlib: training imports this. The pixels come from the packed face cache beside the
PNGs where it holds a crop as its file is (core.faces.packed: a large set loads in seconds, not
minutes), else from the PNG, which the cache then keeps.

FaceSet fields: `images` (N, S, S, 3) uint8 RGB, `masks` (N, S, S) uint8 0/255 (anti-aliased
edge), `landmarks` (N, 68, 2) float32 crop pixels, `names` (file names, sorted), `size` S,
`skipped` (names of crops that could not be used, with why).
`size` resizes everything to a model's resolution (area filtering down, cubic up). `coverage`
keeps only the centre of each crop, as a crop of that coverage would frame it (a model trained on
a tighter crop than the extraction's: more of its pixels on the inner face); `FaceSet.coverage` is
the coverage the arrays really have (whole pixels of the stored crops: within a pixel of the ask).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FacepairError
from core.faces import alignments as store
from core.faces import packed
from core.faces.align import crop_landmarks, landmark_mask


class FaceSetError(FacepairError):
    """A side has no usable faces."""


@dataclass
class FaceSet:
    side: str
    images: np.ndarray
    masks: np.ndarray
    landmarks: np.ndarray
    names: list[str]
    size: int
    skipped: dict[str, str] = field(default_factory=dict)
    coverage: float | None = None  # of the arrays (mean-face units), when known

    def __len__(self) -> int:
        return len(self.names)

    @property
    def source_ids(self) -> list[str]:
        return [store.parse_crop_name(n)[0] for n in self.names]


def face_files(project, side: str) -> list[Path]:
    """The crop files of a side, sorted by name (hidden and temp files, and the .trash folder, left out)."""
    d = project.faces_dir(side)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.suffix == ".png" and not p.name.startswith("."))


def _read(path: Path) -> np.ndarray | None:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if size < img.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp)


def central_box(crop_size: int, crop_coverage: float, coverage: float) -> tuple[int, int]:
    """(offset, side) in whole pixels of the centred square that frames `coverage` in a crop of
    `crop_size` px made at `crop_coverage` (the same centre: align.unit_to_crop)."""
    if not 0 < coverage <= crop_coverage + 1e-9:
        raise FaceSetError(f"coverage {coverage:g} is not inside the extracted crops (coverage {crop_coverage:g}): "
                           f"use a coverage in (0, {crop_coverage:g}]")
    offset = int(round(crop_size * (1 - coverage / crop_coverage) / 2))
    side = crop_size - 2 * offset
    if side < 8:
        raise FaceSetError(f"coverage {coverage:g} leaves {side} px of the {crop_size} px crops: too few")
    return offset, side


def _framed(img: np.ndarray, lms: np.ndarray, size: int | None,
            coverages: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """A crop (and its landmarks) cut to the centre that `coverages` = (the crop's, wanted) asks
    for, then resized to `size`."""
    if coverages is not None:
        offset, kept = central_box(img.shape[0], *coverages)
        img, lms = img[offset:offset + kept, offset:offset + kept], lms - offset
    s = size or img.shape[0]
    if img.shape[0] != s:
        lms = (lms + 0.5) * (s / img.shape[0]) - 0.5
        img = _resize(img, s)
    return img, lms.astype(np.float32)


def _fill(wanted: list[tuple[Path, np.ndarray]], crops, size: int | None, coverages, skipped: dict[str, str]):
    """(images, masks, landmarks) arrays with a row for each usable crop (allocated once, at the
    first crop's size; rows past the names unused), the names, the stored crop sizes."""
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    names, stored = [], []
    for (f, lms), (_, img) in zip(wanted, crops, strict=True):
        if img is None or img.shape[0] != img.shape[1]:
            skipped[f.name] = "unreadable or not a square crop"
            continue
        framed, lms = _framed(img, lms, size, coverages)
        if out is None:
            s = framed.shape[0]
            out = (np.empty((len(wanted), *framed.shape), np.uint8), np.empty((len(wanted), s, s), np.uint8),
                   np.empty((len(wanted), 68, 2), np.float32))
        elif framed.shape != out[0].shape[1:]:
            skipped[f.name] = f"crop is {framed.shape[0]} px, the others {out[0].shape[1]} px (pass size=)"
            continue
        k = len(names)
        out[0][k] = framed
        out[1][k] = landmark_mask(lms, framed.shape[0])
        out[2][k] = lms
        names.append(f.name)
        stored.append(img.shape[0])
    return out, names, stored


def load_faceset(project, side: str, size: int | None = None, limit: int | None = None,
                 workers: int = 4, coverage: float | None = None, cache: bool = True) -> FaceSet:
    """Every usable crop of `side` (see the module notes). Raises FaceSetError when none is.
    `cache`: take the crops' pixels from the packed face cache and keep it up to date
    (core.faces.packed); False decodes every PNG and leaves the cache alone."""
    crop_coverage = store.crop_geometry(project, side)[0]
    files = face_files(project, side)
    if limit is not None:
        files = files[: max(0, int(limit))]
    skipped: dict[str, str] = {}
    stores: dict[str, store.Alignments | None] = {}
    wanted: list[tuple[Path, np.ndarray]] = []
    for f in files:
        parsed = store.parse_crop_name(f.name)
        if parsed is None:
            skipped[f.name] = "not a facepair crop name (SOURCEID_FRAME_FACE.png)"
            continue
        sid, frame, face = parsed
        if sid not in stores:
            try:
                stores[sid] = store.load_for_source(project, sid)
            except store.AlignmentsError:
                stores[sid] = None
        a = stores[sid]
        row = a.row(frame, face) if a is not None else None
        if row is None:
            skipped[f.name] = "no alignment record (re-run `facepair extract`)"
            continue
        if a.status[row] == store.STATUS_CODE["removed"]:
            skipped[f.name] = f"removed (restore it with `facepair faces restore {project.name} {side} --ids {f.stem}`)"
            continue
        wanted.append((f, crop_landmarks(a.landmarks[row], a.matrix[row])))

    coverages = None if coverage is None else (crop_coverage, coverage)
    crops = packed.read_crops(project, side, [f for f, _ in wanted], _read, workers, use_cache=cache)
    with contextlib.closing(crops):  # the cache is brought up to date even when a crop fails
        out, names, stored = _fill(wanted, crops, size, coverages, skipped)
    if not names:
        why = f" ({len(skipped)} crops unusable, e.g. {next(iter(skipped.items()))})" if skipped else ""
        raise FaceSetError(f"side {side} of project {project.name!r} has no faces{why}: "
                           f"add sources and run `facepair extract {project.name} --side {side}`")
    n = len(names)
    images, masks, landmarks = (x[:n] for x in out)
    effective = crop_coverage
    if coverage is not None:
        effective = crop_coverage * central_box(stored[0], crop_coverage, coverage)[1] / stored[0]
    return FaceSet(side=side, images=images, masks=masks, landmarks=landmarks, names=names, size=images.shape[1],
                   skipped=skipped, coverage=effective)

