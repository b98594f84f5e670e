"""What a person sorts a side's faces by: sharpness, head pose, identity, size, alignment quality,
near-duplicates and source order, one row per face that has a crop (kept or in the trash).

Scores are computed once per source from its alignments store and cached beside it
(`alignments/SOURCEID.fpa/scores.npz`, keyed on the store's parts and meta), so listing and
re-sorting thousands of faces reads one small file per source. The identity distance is not
cached: it is measured against the side's reference at read time (a 128-d dot product per face).

The scores (`SCORES`; NaN where a face has no value):
- `blur`: variance of the Laplacian over the face (the store's `blur`, measured at extraction on a
  128-px aligned crop of the frame; `blur_score` on the crop file when the store has none). Higher is
  sharper: out-of-focus faces score under ~15, sharp ones in the hundreds.
- `yaw`, `pitch`, `roll`: head pose in degrees from the 68 landmarks (`head_pose`: cv2.solvePnP of
  six landmarks against a generic 3-D face). yaw > 0: the nose points to the image's right;
  pitch > 0: the nose points up; roll > 0: the eye line turns clockwise on screen (the eye on the
  image's right is lower). A mirrored face has yaw and roll of the other sign, the same pitch.
- `identity`: dlib descriptor distance to the side's person (the extraction's reference,
  `alignments/_reference-SIDE.json`, else the median descriptor of the side's kept faces). Same
  person: under ~0.6; other people and false detections sort first with a descending sort.
  A face without a stored descriptor shares its track's; a track without any gets one computed on
  its middle crop (dlib, once, cached).
- `size`: the face's size in source-frame pixels (the side of the mean-face unit square,
  `core.faces.align.face_size`: steady under pose, about the eyebrows-to-chin height).
- `align`: the landmark fit residual of the similarity alignment (RMS distance of landmarks 17–67
  from the mean face after the fit, in mean-face units): higher = an odd fit (strong pose or
  expression, or landmarks that missed).
- `change`: how much the face differs from the previous face of its track (RMS of the aligned
  68 landmarks' difference, mean-face units): near-duplicates of consecutive frames score near 0;
  NaN for a track's first face and for stills.
- `order`: the position in source order (sources as project.toml lists them, then frame, face).

API: `SCORES`, `head_pose(landmarks)`, `fit_scores(landmarks)`, `blur_score(image, landmarks)`,
`side_scores(project, side) -> ScoreTable` (columns over every face with a crop of the side).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.faces import align
from core.faces import alignments as store

SCORES = ("blur", "yaw", "pitch", "roll", "identity", "size", "align", "change", "order")
CACHE = "scores.npz"
CACHE_VERSION = 1
BLUR_SIZE = 128  # px: the aligned crop the blur is measured on (as the extraction does)
_CACHED = ("frame", "face", "track", "status", "blur", "yaw", "pitch", "roll", "size", "align", "change")
_WITH_CROP = (store.STATUS_CODE["kept"], store.STATUS_CODE["removed"])

# Six landmarks and a generic head in camera axes for a frontal face (x right, y down, z away from
# the camera; the nose tip at the origin, arbitrary units: the classic OpenCV head-pose model).
POSE_LANDMARKS = (30, 8, 36, 45, 48, 54)  # nose tip, chin, outer eye corners, mouth corners
POSE_MODEL = np.array([(0.0, 0.0, 0.0), (0.0, 330.0, 65.0), (-225.0, -170.0, 135.0), (225.0, -170.0, 135.0),
                       (-150.0, 150.0, 125.0), (150.0, 150.0, 125.0)])
FOCAL_FACES = 8.0  # the assumed focal length in face sizes: a camera a few face sizes away


# ---- per-face measures ---------------------------------------------------------------------------

def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a face with these 68 frame landmarks (signs: module notes).

    The principal point is put at the face (the frame's size is not in the store) and the focal
    length at FOCAL_FACES face sizes; the solve starts from a frontal pose, so it never lands on
    the mirror solution of a face seen from behind."""
    import cv2

    pts = np.asarray(landmarks, np.float64)
    image = np.ascontiguousarray(pts[list(POSE_LANDMARKS)])
    size = align.face_size(pts)
    f = FOCAL_FACES * size
    centre = pts.mean(axis=0)
    camera = np.array([[f, 0.0, centre[0]], [0.0, f, centre[1]], [0.0, 0.0, 1.0]])
    eyes = np.linalg.norm(image[3] - image[2])
    z = f * 450.0 / max(eyes, 1e-6)  # the model's eye corners are 450 units apart
    tvec = np.array([[(image[0, 0] - centre[0]) * z / f], [(image[0, 1] - centre[1]) * z / f], [z]])
    rvec = np.zeros((3, 1))
    ok, rvec, tvec = cv2.solvePnP(POSE_MODEL, image, camera, None, rvec, tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return (math.nan, math.nan, math.nan)
    rot = cv2.Rodrigues(rvec)[0]
    nose = -rot[:, 2]  # where the face points, in camera axes
    eye_line = rot[:, 0]  # the model's left-to-right axis
    yaw = math.degrees(math.atan2(nose[0], -nose[2]))
    pitch = math.degrees(math.atan2(-nose[1], math.hypot(nose[0], nose[2])))
    roll = math.degrees(math.atan2(eye_line[1], eye_line[0]))
    return (yaw, pitch, roll)


def fit_scores(landmarks: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(size px, fit residual, the 68 landmarks in mean-face units) of one face: one similarity fit
    of landmarks 17–67 onto the mean face gives all three."""
    pts = np.asarray(landmarks, np.float64)
    m = align.umeyama(pts[list(align.LANDMARK_IDS)], align.MEAN_FACE)[:2]
    unit = align.transform_points(pts, m)
    residual = float(np.sqrt(((unit[list(align.LANDMARK_IDS)] - align.MEAN_FACE) ** 2).sum(axis=1).mean()))
    return 1.0 / align.matrix_scale(m), residual, unit


def blur_score(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Sharpness of a face: the variance of the Laplacian over its landmark hull, measured on a
    BLUR_SIZE-px aligned crop of `image` (a frame at extraction, a crop file here; `landmarks` in
    that image's pixels) — the same scale for every face whatever the crop size, so a face too
    small to hold detail scores as blurry too. Out of focus: under ~15; sharp: in the hundreds."""
    import cv2

    from core.faces import detect

    m = align.crop_matrix(landmarks, BLUR_SIZE)
    small = align.warp_to_crop(detect.to_gray(image), m, BLUR_SIZE)
    mask = cv2.erode(align.landmark_mask(align.crop_landmarks(landmarks, m), BLUR_SIZE),
                     np.ones((5, 5), np.uint8)) > 127
    lap = cv2.Laplacian(small, cv2.CV_64F)
    vals = lap[mask] if mask.sum() > 50 else lap.ravel()
    return float(vals.var())


def _changes(track: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Each face's `change` from the previous face of its track (rows are in frame order)."""
    out = np.full(len(track), np.nan, np.float32)
    last: dict[int, int] = {}
    for r, t in enumerate(track.tolist()):
        if t >= 0 and t in last:
            d = units[r] - units[last[t]]
            out[r] = float(np.sqrt((d ** 2).sum(axis=1).mean()))
        last[t] = r
    return out


def _filled_descriptors(a: store.Alignments, rows: np.ndarray) -> np.ndarray:
    """(len(rows), 128) descriptors: a face's own, else the nearest one of its track; NaN where
    its track has none."""
    own = np.full((len(a), 128), np.nan, np.float32)
    if len(a.descriptor_face):
        own[a.descriptor_face] = a.descriptors
    out = own[rows]
    tracks = a.track[rows]
    for t in np.unique(tracks):
        idx = np.flatnonzero(tracks == t) if t >= 0 else []
        have = [i for i in idx if np.isfinite(out[i, 0])]
        if not have or len(have) == len(idx):
            continue
        for i in idx:
            if not np.isfinite(out[i, 0]):
                out[i] = out[min(have, key=lambda h: abs(int(a.face_frame[rows[h]]) - int(a.face_frame[rows[i]])))]
    return out


# ---- one source: computed once, cached beside its store --------------------------------------------

def store_signature(path: Path) -> str:
    """What a source's cached scores were computed from: the store's meta and parts (names, sizes,
    mtimes) and whether it has curation decisions; any change recomputes them."""
    entries = []
    for p in sorted(path.iterdir()) if path.is_dir() else ():
        if p.name == store.META or store.PART_RE.match(p.name):
            st = p.stat()
            entries.append([p.name, st.st_size, st.st_mtime_ns])
    curated = (path / store.CURATION).is_file()
    return json.dumps({"version": CACHE_VERSION, "files": entries, "curated": curated})


def _compute_source(a: store.Alignments, crop_of) -> dict[str, np.ndarray]:
    """The cached columns (and filled descriptors) of one store's faces that have a crop.
    `crop_of(name)` is the crop file's path or None (used only where the store lacks a value)."""
    rows = np.flatnonzero(np.isin(a.status, _WITH_CROP))
    n = len(rows)
    cols = {k: np.full(n, np.nan, np.float32) for k in ("yaw", "pitch", "roll", "size", "align")}
    units = np.zeros((n, 68, 2))
    for j, r in enumerate(rows):
        lms = a.landmarks[r]
        if not np.isfinite(lms).all():
            continue
        cols["size"][j], cols["align"][j], units[j] = fit_scores(lms)
        cols["yaw"][j], cols["pitch"][j], cols["roll"][j] = head_pose(lms)
    blur = a.blur[rows].astype(np.float32)
    for j in np.flatnonzero(~np.isfinite(blur)):
        blur[j] = _crop_value(crop_of(a.name(int(rows[j]))), a, int(rows[j]), "blur")
    desc = _filled_descriptors(a, rows)
    _describe_missing(a, rows, desc, crop_of)
    return {"frame": a.face_frame[rows].astype(np.int64), "face": a.face_index[rows].astype(np.int64),
            "track": a.track[rows].astype(np.int64), "status": a.status[rows].astype(np.int8), "blur": blur,
            **cols, "change": _changes(a.track[rows], units), "descriptor": desc}


def _crop_value(path: Path | None, a: store.Alignments, row: int, what: str):
    """The blur (or, what="descriptor", the dlib descriptor) measured on a face's crop file."""
    if path is None:
        return math.nan if what == "blur" else None
    from core.errors import FacepairError
    from core.media.read import read_image

    try:
        crop = read_image(path)
    except FacepairError:
        return math.nan if what == "blur" else None
    lms = align.crop_landmarks(a.landmarks[row], a.matrix[row])
    if what == "blur":
        return blur_score(crop, lms)
    from core.faces import detect

    return detect.descriptor(crop, lms)


def _describe_missing(a: store.Alignments, rows: np.ndarray, desc: np.ndarray, crop_of) -> None:
    """A descriptor for each track (or still) that has none: computed on its middle crop, shared."""
    missing = ~np.isfinite(desc[:, 0])
    tracks = a.track[rows]
    groups: dict[int, list[int]] = {}
    for j in np.flatnonzero(missing).tolist():
        key = int(tracks[j]) if tracks[j] >= 0 else -1 - j  # a face without a track is its own group
        groups.setdefault(key, []).append(j)
    for js in groups.values():
        mid = js[len(js) // 2]
        d = _crop_value(crop_of(a.name(int(rows[mid]))), a, int(rows[mid]), "descriptor")
        if d is not None:
            desc[js] = np.asarray(d, np.float32)


def _read_cache(path: Path, sig: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path / CACHE, allow_pickle=False) as z:
            if str(z["signature"]) == sig:
                return {k: z[k] for k in (*_CACHED, "descriptor")}
    except (OSError, ValueError, KeyError, EOFError):
        pass
    return None


def _write_cache(path: Path, sig: str, cols: dict[str, np.ndarray]) -> None:
    """Cache a source's scores (a cache that cannot be written, e.g. a read-only project, is skipped)."""
    import io

    from core.system.atomic import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, signature=np.array(sig), **cols)
    try:
        atomic_write_bytes(path / CACHE, buf.getvalue())
    except OSError:
        pass


def source_columns(project, side: str, source_id: str) -> dict[str, np.ndarray] | None:
    """One source's score columns: from its cache when the store is unchanged (the store itself is
    then not loaded), else computed and cached. None when the source has no store."""
    from core.faces import trash

    path = store.store_path(project, source_id)
    if not (path / store.META).is_file():
        return None
    sig = store_signature(path)
    cols = _read_cache(path, sig)
    if cols is None:
        a = store.load(path)
        cols = _compute_source(a, lambda name: trash.crop_file(project, side, name))
        _write_cache(path, sig, cols)
    return cols


# ---- a side ----------------------------------------------------------------------------------------

@dataclass
class ScoreTable:
    """Every face of a side that has a crop, as columns (numpy arrays of one length, in source
    order): `source` (ids), `frame`, `face`, `track`, `removed` (bool: in the trash) and each
    score of SCORES. `names` are the crop file names."""

    side: str
    columns: dict[str, np.ndarray]
    reference: str  # where the identity distance is measured from, in words

    def __len__(self) -> int:
        return len(self.columns["order"])

    @property
    def names(self) -> list[str]:
        c = self.columns
        return [store.crop_name(s, f, i) for s, f, i in zip(c["source"].tolist(), c["frame"].tolist(),
                                                           c["face"].tolist(), strict=True)]

    def order_by(self, key: str, descending: bool = False, rows: np.ndarray | None = None) -> np.ndarray:
        """Row numbers sorted by one column (ties in source order; NaN last either way)."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, np.int64)
        v = self.columns[key][rows]
        if v.dtype.kind in "fiub":
            v = v.astype(np.float64)
            nan = ~np.isfinite(v)
            v = np.where(nan, 0.0, -v if descending else v)
            return rows[np.lexsort((self.columns["order"][rows], v, nan))]
        o = np.argsort(v, kind="stable")
        return rows[o[::-1] if descending else o]


def reference_descriptors(project, side: str, descriptors: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, str]:
    """The side's person: the extraction's reference (`_reference-SIDE.json`) when there is one,
    else the median of the kept faces' descriptors. (K, 128) and where it comes from."""
    from core.system.atomic import read_json

    try:
        data = read_json(project.alignments_dir / f"_reference-{side}.json")
        refs = np.asarray(data.get("descriptors") or [], np.float32).reshape(-1, 128)
        if len(refs):
            return refs, f"the extraction's reference ({data.get('origin') or 'reference-' + side})"
    except (OSError, ValueError, TypeError):
        pass
    have = kept & np.isfinite(descriptors[:, 0])
    if not have.any():
        return np.zeros((0, 128), np.float32), "none (no descriptors)"
    return np.median(descriptors[have], axis=0, keepdims=True).astype(np.float32), "the median of the kept faces"


def _identity(descriptors: np.ndarray, refs: np.ndarray) -> np.ndarray:
    out = np.full(len(descriptors), np.nan, np.float32)
    if not len(refs) or not len(descriptors):
        return out
    d = np.linalg.norm(descriptors[:, None, :] - refs[None, :, :], axis=-1).min(axis=1)
    return np.where(np.isfinite(descriptors[:, 0]), d, np.nan).astype(np.float32)


def side_scores(project, side: str) -> ScoreTable:
    """Every face with a crop of `side` (kept or in the trash) and its scores (see the module notes).
    Computes and caches what a source's cache lacks; the curation decisions are read fresh."""
    parts: list[dict[str, np.ndarray]] = []
    for src in project.sources_of(side):
        cols = source_columns(project, side, src.id)
        if cols is None:
            continue
        decided = store.read_curation(store.store_path(project, src.id))
        status = cols["status"].copy()
        for j, (f, i) in enumerate(zip(cols["frame"].tolist(), cols["face"].tolist(), strict=True)):
            status[j] = decided.get((f, i), status[j])
        parts.append({**cols, "status": status, "source": np.full(len(status), src.id)})
    if not parts:
        parts = [{**{k: np.zeros(0, np.float32) for k in _CACHED}, "descriptor": np.zeros((0, 128), np.float32),
                  "source": np.zeros(0, "<U1")}]
    c = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    removed = c.pop("status") == store.STATUS_CODE["removed"]
    desc = c.pop("descriptor")
    refs, origin = reference_descriptors(project, side, desc, ~removed)
    c.update(removed=removed, identity=_identity(desc, refs), order=np.arange(len(removed), dtype=np.int64))
    for k in ("frame", "face", "track"):
        c[k] = c[k].astype(np.int64)
    return ScoreTable(side=side, columns=c, reference=origin)
