"""How well person B's face fits a candidate person's face: shape features, pose, scores.

Pure numpy (no dlib, no cv2, no files): the job that finds faces and writes the ranking is
`core.fit.job` (it also re-measures every face's landmarks on an upright crop of fixed size, so
dlib's own scale and roll sensitivity do not reach these numbers). Everything here works on
dlib's 68 landmarks, (68, 2) or (N, 68, 2), in any image's pixels.

Why these measurements
- A swap replaces the inner face (brows, eyes, nose, mouth) and keeps the footage's jaw line,
  head outline and proportions. B looks right on footage whose outline and inner proportions
  are close to B's own.
- `normalize` maps landmarks by the similarity transform (Umeyama, landmarks 17–67 onto
  `core.faces.align.MEAN_FACE`) that the extraction uses to align faces: rotation, scale and position
  are gone, so every measurement is in *mean-face units* (about 1.0 = brow tip to brow tip) and
  does not depend on image size or in-plane rotation.
- `FEATURES`: the jaw's width at three heights (cheeks 1–15, jaw angle 4–12, chin 6–10), the
  face's length (nasion 27 to chin 8), its width-to-height ratio, the chin's length, the eye
  spacing and size, brow height, nose length and width, mouth width and placement; and the jaw
  line as a whole (`jaw_contour`: left-right symmetric half-widths and heights of points 0–16,
  which a turned head barely changes). An open mouth drops the jaw: `close_mouth` raises the
  jaw and lower lip by the lip gap (62–66) first, so a singer's face measures like a
  closed-mouth one. Each person gets the *median* of every feature over their near-frontal faces
  (|yaw| ≤ `FRONTAL_YAW`; the most frontal third when there are too few), not one frame.
- `compare`: per feature, the log of the ratio candidate/B divided by a tolerance (the size of a
  difference that is visible; larger for features that move with expression such as mouth
  width), a weighted root-mean-square `distance` D over features and the jaw contour, and a
  score `100 · exp(−D² / 2)`: 100 is the same shape, ~61 a typical visible difference in every
  feature, under 30 a poor fit. Symmetric by construction: compare(b, c) == compare(c, b).
  The features with the largest part in D are said in plain words ("jaw 9% wider"), always
  describing the candidate relative to B.

Pose (`estimate_pose`)
- A scaled-orthographic fit of a generic 3-D face (`MODEL_3D`: x, y from the mean face, depth
  from average adult anthropometry, ~122 mm per mean-face unit) to the 68 landmarks: an affine
  least-squares fit, projected onto the nearest scaled rotation (the first step of the POS
  algorithm, DeMenthon & Davis 1995). It needs no camera intrinsics, which a face crop does not
  have, and is accurate to a few degrees for |yaw| < 45° (tested on projections of the model with
  landmark noise); dlib's landmarks themselves fail beyond ~60°.
- Angles in degrees: yaw > 0 = the face turns towards the image's right (the nose points right),
  pitch > 0 = the face looks up, roll > 0 = the face is rotated clockwise in the image.
- `pose_coverage(b_poses, c_poses)`: the share of the candidate's faces whose (yaw, pitch) lies
  within `POSE_TOLERANCE` degrees (an ellipse) of at least one of B's faces: the model only
  renders angles it has seen, so footage with poses B never shows will look wrong there.

People (`group_people`): faces are grouped by dlib's face descriptor into people, so a video
with several people (or one person across cuts) is scored person by person.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.faces.align import LANDMARK_IDS, MEAN_FACE, umeyama

FRONTAL_YAW = 20.0          # degrees: faces used for shape
MIN_FRONTAL = 3             # below this many frontal faces, the most frontal third is used
POSE_TOLERANCE = (10.0, 12.0)  # (yaw, pitch) degrees: a candidate pose within this of a B pose is covered
IDENTITY_THRESHOLD = 0.6    # descriptor distance below which two tracks are one person (dlib's)


# ---- normalisation ---------------------------------------------------------------------------

def _as_batch(landmarks) -> tuple[np.ndarray, bool]:
    pts = np.asarray(landmarks, dtype=np.float64)
    single = pts.ndim == 2
    if single:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2) or (N, 68, 2), got {pts.shape}")
    return pts, single


def normalize(landmarks) -> np.ndarray:
    """Landmarks in mean-face units: the similarity (Umeyama on 17–67) onto the mean face.

    (68, 2) or (N, 68, 2) in, same shape out (float64). Removes position, scale and in-plane
    rotation, exactly as the extraction's alignment does.
    """
    pts, single = _as_batch(landmarks)
    out = np.empty_like(pts)
    inner = list(LANDMARK_IDS)
    for i, p in enumerate(pts):
        t = umeyama(p[inner], MEAN_FACE)
        out[i] = p @ t[:2, :2].T + t[:2, 2]
    return out[0] if single else out


def lip_gap(n: np.ndarray) -> np.ndarray:
    """How far the mouth is open (inner lips 62 → 66), ≥ 0, for normalised (N, 68, 2) landmarks."""
    return np.maximum(0.0, n[:, 66, 1] - n[:, 62, 1])


def close_mouth(n: np.ndarray) -> np.ndarray:
    """Normalised landmarks with an open jaw raised back by the lip gap.

    Opening the mouth swings the jaw about the ear: the chin (8) drops by about the lip gap and
    the contour points less the nearer they are to the ear. The lower lip and the jaw points are
    raised by the gap times their share of the way from the ear level (points 0/16) to the chin.
    """
    n = np.array(n, dtype=np.float64, copy=True)
    gap = lip_gap(n)[:, None]
    top = (n[:, 0, 1] + n[:, 16, 1])[:, None] / 2
    span = np.maximum(n[:, 8, 1][:, None] - top, 1e-6)
    lower = list(range(0, 17)) + [55, 56, 57, 58, 59, 65, 66, 67]
    w = np.clip((n[:, lower, 1] - top) / span, 0.0, 1.0)
    n[:, lower, 1] -= gap * w
    return n


# ---- shape features --------------------------------------------------------------------------

@dataclass(frozen=True)
class Feature:
    """A scalar shape measurement: its name, its words, the tolerance (log ratio) and weight."""

    name: str
    part: str        # what a user calls it: "jaw", "nose", …
    more: str        # the word for a larger value: "wider"
    less: str        # the word for a smaller value: "narrower"
    tolerance: float  # |log(c / b)| that is a plainly visible difference
    weight: float     # its share in the score (outline features weigh most: a swap keeps them)


FEATURES: tuple[Feature, ...] = (
    Feature("jaw_width", "jaw", "wider", "narrower", 0.05, 2.0),
    Feature("face_width", "face", "wider", "narrower", 0.05, 2.0),
    Feature("chin_width", "chin", "wider", "narrower", 0.08, 1.0),
    Feature("face_length", "face", "longer", "shorter", 0.05, 2.0),
    Feature("width_height", "width-to-height ratio", "higher", "lower", 0.06, 2.0),
    Feature("chin_length", "chin", "longer", "shorter", 0.10, 1.0),
    Feature("eye_spacing", "eyes", "further apart", "closer together", 0.04, 1.0),
    Feature("eye_size", "eyes", "larger", "smaller", 0.06, 0.5),
    Feature("brow_height", "brows", "higher", "lower", 0.10, 0.5),
    Feature("nose_length", "nose", "longer", "shorter", 0.04, 1.0),
    Feature("nose_width", "nose", "wider", "narrower", 0.10, 1.0),
    Feature("mouth_width", "mouth", "wider", "narrower", 0.12, 0.5),
    Feature("mouth_height", "mouth", "set lower", "set higher", 0.15, 0.5),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)
CONTOUR = Feature("jaw_contour", "jaw line", "differs", "differs", 0.04, 2.0)


def _d(n: np.ndarray, i: int, j: int) -> np.ndarray:
    return np.linalg.norm(n[:, i] - n[:, j], axis=-1)


def features(landmarks) -> np.ndarray:
    """Every scalar feature of `FEATURES` for each face: (N, F) float64 (or (F,) for one face).

    Lengths are in mean-face units, measured on normalised landmarks with the mouth closed.
    """
    pts, single = _as_batch(landmarks)
    raw = normalize(pts)  # a batch in, a batch out
    n = close_mouth(raw)
    eye_l, eye_r = n[:, 36:42].mean(axis=1), n[:, 42:48].mean(axis=1)
    eye_y = (eye_l[:, 1] + eye_r[:, 1]) / 2
    face_width = _d(n, 1, 15)
    face_length = n[:, 8, 1] - n[:, 27, 1]
    cols = {
        "jaw_width": _d(n, 4, 12),
        "face_width": face_width,
        "chin_width": _d(n, 6, 10),
        "face_length": face_length,
        "width_height": face_width / np.maximum(face_length, 1e-6),
        "chin_length": n[:, 8, 1] - n[:, 57, 1],
        "eye_spacing": np.linalg.norm(eye_l - eye_r, axis=-1),
        "eye_size": (_d(n, 36, 39) + _d(n, 42, 45)) / 2,
        "brow_height": eye_y - n[:, 17:27, 1].mean(axis=1),
        "nose_length": n[:, 33, 1] - n[:, 27, 1],
        "nose_width": _d(n, 31, 35),
        "mouth_width": _d(n, 48, 54),
        "mouth_height": (raw[:, 51, 1] + raw[:, 62, 1]) / 2 - raw[:, 33, 1],
    }
    out = np.stack([cols[name] for name in FEATURE_NAMES], axis=1)
    return out[0] if single else out


def jaw_contour(landmarks) -> np.ndarray:
    """The jaw line (points 0–16) as a left-right symmetric shape, mouth closed, mean-face units:
    for each pair (i, 16 − i), i = 0…7, its half-width and mean height, then the chin's height —
    (N, 17) or (17,).

    Why symmetric: turning the head (yaw) slides every contour point sideways, to first order by
    the same amount on both sides, so the half-widths and heights barely change, while the raw
    positions would read a turned head as a different jaw.
    """
    pts, single = _as_batch(landmarks)
    n = close_mouth(normalize(pts))
    left, right = n[:, 0:8], n[:, 16:8:-1]
    half_width = (right[..., 0] - left[..., 0]) / 2
    height = (right[..., 1] + left[..., 1]) / 2
    out = np.concatenate([half_width, height, n[:, 8:9, 1]], axis=1)
    return out[0] if single else out


# ---- pose ------------------------------------------------------------------------------------

_MM = 1.0 / 122.0  # mean-face units per millimetre (outer eye corners 0.737 units ≈ 90 mm apart)

# Depth (mm, towards the viewer, relative to the outer eye corners) of the landmarks the pose fit
# uses: those on rigid parts of the face. The jaw line (0–16) is a silhouette that slides over
# the cheeks as the head turns, so only the chin (8) is used from it.
_DEPTH_MM = {
    8: 14.0,
    17: 2.0, 18: 10.0, 19: 15.0, 20: 18.0, 21: 18.0, 22: 18.0, 23: 18.0, 24: 15.0, 25: 10.0, 26: 2.0,
    27: 18.0, 28: 22.0, 29: 26.0, 30: 32.0, 31: 16.0, 32: 20.0, 33: 23.0, 34: 20.0, 35: 16.0,
    36: 0.0, 37: 6.0, 38: 8.0, 39: 10.0, 40: 8.0, 41: 6.0,
    42: 10.0, 43: 8.0, 44: 6.0, 45: 0.0, 46: 6.0, 47: 8.0,
    48: 8.0, 49: 15.0, 50: 19.0, 51: 21.0, 52: 19.0, 53: 15.0, 54: 8.0,
    55: 14.0, 56: 18.0, 57: 19.0, 58: 18.0, 59: 14.0,
}
POSE_IDS = tuple(sorted(_DEPTH_MM))
_CHIN_XY = (0.490127, 1.19)  # the chin in mean-face units (median over real frontal faces)


def _model_3d() -> np.ndarray:
    pts = []
    for i in POSE_IDS:
        x, y = _CHIN_XY if i == 8 else MEAN_FACE[i - 17]
        # z grows away from the viewer, so (x right, y down, z) is right-handed.
        pts.append((x, y, -_DEPTH_MM[i] * _MM))
    return np.array(pts, dtype=np.float64)


MODEL_3D = _model_3d()
MODEL_3D.setflags(write=False)


def rotation(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """The 3×3 rotation of the model for these angles (degrees; conventions in the module notes)."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    # Turning right (yaw > 0) moves the nose (z < 0) to +x; looking up (pitch > 0) moves it to −y.
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def project_model(yaw: float, pitch: float, roll: float = 0.0, scale: float = 100.0,
                  offset: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """The model's landmarks (len(POSE_IDS), 2) seen at this pose (scaled orthographic): for tests
    and for explaining the estimate."""
    x = (MODEL_3D - MODEL_3D.mean(axis=0)) @ rotation(yaw, pitch, roll).T
    return scale * x[:, :2] + np.asarray(offset, dtype=np.float64)


def _angles(r: np.ndarray) -> tuple[float, float, float]:
    # The inverse of rotation(): R = Rz(roll) · Ry(yaw) · Rx(pitch), roll outermost, so an image
    # rotation changes the roll only.
    yaw = math.degrees(math.asin(float(np.clip(r[2, 0], -1.0, 1.0))))
    pitch = -math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll


def pose_from_points(points: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the image positions of `POSE_IDS` ((K, 2) pixels)."""
    x = np.asarray(points, dtype=np.float64)
    x = x - x.mean(axis=0)
    m = MODEL_3D - MODEL_3D.mean(axis=0)
    a, *_ = np.linalg.lstsq(m, x, rcond=None)  # x ≈ m @ a, a is 3×2
    u, _, vt = np.linalg.svd(a.T, full_matrices=False)  # a.T (2×3) ≈ s · R[:2]
    r2 = u @ vt
    r = np.vstack([r2, np.cross(r2[0], r2[1])])
    return _angles(r)


def estimate_pose(landmarks) -> np.ndarray:
    """(yaw, pitch, roll) degrees per face: (N, 3), or (3,) for one face (see the module notes)."""
    pts, single = _as_batch(landmarks)
    ids = list(POSE_IDS)
    out = np.array([pose_from_points(p[ids]) for p in pts], dtype=np.float64).reshape(-1, 3)
    return out[0] if single else out


def pose_coverage(b_poses, c_poses, tolerance: tuple[float, float] = POSE_TOLERANCE) -> float:
    """Share (0–1) of the candidate's (yaw, pitch) poses within `tolerance` of one of B's."""
    b, c = (np.asarray(x, dtype=np.float64) for x in (b_poses, c_poses))
    b = b.reshape(-1, b.shape[-1])[:, :2] if b.size else np.zeros((0, 2))
    c = c.reshape(-1, c.shape[-1])[:, :2] if c.size else np.zeros((0, 2))
    if len(c) == 0:
        return float("nan")
    if len(b) == 0:
        return 0.0
    tol = np.asarray(tolerance, dtype=np.float64)
    d = ((c[:, None, :] - b[None, :, :]) / tol) ** 2  # (C, B, 2)
    covered = (d.sum(axis=-1) <= 1.0).any(axis=1)
    return float(covered.mean())


# ---- a person's profile and the comparison ---------------------------------------------------

@dataclass
class Profile:
    """One person's face shape over many faces: medians of the features, the median jaw line,
    and every face's pose."""

    faces: int
    shape_faces: int            # faces the medians are taken over (near-frontal)
    features: np.ndarray        # (F,) medians, in FEATURE_NAMES order
    contour: np.ndarray         # (17,) median symmetric jaw line (see jaw_contour), mean-face units
    poses: np.ndarray           # (N, 3) yaw, pitch, roll of every face
    notes: list[str] = field(default_factory=list)

    def feature(self, name: str) -> float:
        return float(self.features[FEATURE_NAMES.index(name)])

    def pose_range(self, q: float = 5.0) -> dict[str, list[float]]:
        """The (q, 100 − q) percentiles of yaw and pitch, degrees."""
        lo, hi = np.percentile(self.poses[:, :2], [q, 100 - q], axis=0)
        return {"yaw": [round(float(lo[0]), 1), round(float(hi[0]), 1)],
                "pitch": [round(float(lo[1]), 1), round(float(hi[1]), 1)]}


def frontal_rows(poses: np.ndarray, limit: float = FRONTAL_YAW, minimum: int = MIN_FRONTAL) -> np.ndarray:
    """Indices of the faces to measure shape on: |yaw| ≤ `limit`, or the most frontal third."""
    yaw = np.abs(np.asarray(poses, dtype=np.float64)[:, 0])
    rows = np.flatnonzero(yaw <= limit)
    if len(rows) >= min(minimum, len(yaw)):
        return rows
    k = max(1, len(yaw) // 3, len(rows))
    return np.argsort(yaw, kind="stable")[:k]


def profile(landmarks) -> Profile:
    """A person's `Profile` from their faces' 68 landmarks ((N, 68, 2), N ≥ 1, any pixels)."""
    pts, _ = _as_batch(landmarks)
    if len(pts) == 0:
        raise ValueError("profile needs at least one face")
    poses = estimate_pose(pts).reshape(-1, 3)
    rows = frontal_rows(poses)
    notes = []
    if np.abs(poses[rows, 0]).max(initial=0.0) > FRONTAL_YAW:
        notes.append(f"few frontal faces: shape measured on the {len(rows)} least turned "
                     f"(|yaw| up to {np.abs(poses[rows, 0]).max():.0f}°)")
    feats = features(pts[rows]).reshape(len(rows), -1)
    contour = jaw_contour(pts[rows]).reshape(len(rows), 17)
    return Profile(faces=len(pts), shape_faces=len(rows), features=np.median(feats, axis=0),
                   contour=np.median(contour, axis=0), poses=poses, notes=notes)


@dataclass(frozen=True)
class Difference:
    """How one feature of the candidate differs from B's."""

    feature: str
    log_ratio: float   # log(candidate / B); for the contour, the RMS gap / face width
    z: float           # |log_ratio| / tolerance: how visible the difference is
    words: str         # "jaw 9% wider"
    weight: float = 1.0  # the feature's weight in the score

    @property
    def share(self) -> float:
        """Its part in the distance (weight · z²): what "differs most" is sorted by."""
        return self.weight * self.z * self.z

    def to_dict(self) -> dict:
        return {"feature": self.feature, "percent": round(100 * (math.exp(self.log_ratio) - 1), 1)
                if self.feature != CONTOUR.name else round(100 * self.log_ratio, 1),
                "z": round(self.z, 2), "words": self.words}


@dataclass(frozen=True)
class Comparison:
    score: float              # 0–100, higher = B's face fits the candidate's better
    distance: float           # the weighted RMS of the per-feature z
    differences: tuple[Difference, ...]  # every feature, the largest part of the distance first
    coverage: float           # share of the candidate's poses covered by B's faces (0–1)

    def top(self, k: int = 3, min_z: float = 0.5) -> list[Difference]:
        """The `k` most visible differences (at least one, even when all are small)."""
        out = [d for d in self.differences[:k] if d.z >= min_z]
        return out or list(self.differences[:1])


def describe(feature: Feature, log_ratio: float) -> str:
    """Plain words for a candidate/B ratio: "jaw 9% wider", "eyes 4% closer together"."""
    if feature.name == CONTOUR.name:
        return f"jaw line differs by {100 * log_ratio:.0f}% of face width"
    ratio = math.exp(log_ratio)
    pct = 100 * abs(ratio - 1)
    word = feature.more if ratio >= 1 else feature.less
    return f"{feature.part} {pct:.0f}% {word}"


def compare(b: Profile, c: Profile, pose_tolerance: tuple[float, float] = POSE_TOLERANCE) -> Comparison:
    """How well B's face fits candidate `c` (see the module notes for the score)."""
    diffs = []
    num = den = 0.0
    for i, f in enumerate(FEATURES):
        lr = float(np.log(max(c.features[i], 1e-9) / max(b.features[i], 1e-9)))
        z = abs(lr) / f.tolerance
        diffs.append(Difference(f.name, lr, z, describe(f, lr), f.weight))
        num += f.weight * z * z
        den += f.weight
    # The jaw line as a whole: RMS point distance of the median contours, as a share of face width.
    width = (b.feature("face_width") + c.feature("face_width")) / 2
    gap = float(np.sqrt(((b.contour - c.contour) ** 2).mean()) / max(width, 1e-9))
    z = gap / CONTOUR.tolerance
    diffs.append(Difference(CONTOUR.name, gap, z, describe(CONTOUR, gap), CONTOUR.weight))
    num += CONTOUR.weight * z * z
    den += CONTOUR.weight
    distance = math.sqrt(num / den)
    score = 100.0 * math.exp(-distance * distance / 2)
    diffs.sort(key=lambda d: -d.share)
    return Comparison(score=score, distance=distance, differences=tuple(diffs),
                      coverage=pose_coverage(b.poses, c.poses, pose_tolerance))


# ---- people ----------------------------------------------------------------------------------

def group_people(descriptors: np.ndarray, tracks: Sequence[int] | None = None,
                 threshold: float = IDENTITY_THRESHOLD) -> np.ndarray:
    """A person label (0, 1, …, the group with the most faces first) for each face, from dlib
    descriptors (N, 128).

    Faces of one track stay together (a track is one person by construction) and the track votes
    once, with its mean descriptor, however many frames it spans. Groups are merged by average
    linkage while the mean descriptor distance between two groups' tracks is below `threshold`.
    Faces whose descriptor is NaN join their track's group, or stay alone.
    """
    d = np.asarray(descriptors, dtype=np.float64).reshape(len(descriptors), -1)
    n = len(d)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    members = _initial_groups([int(t) for t in tracks] if tracks is not None else [-1] * n)
    groups = _average_linkage(_vote_distances(d, members), threshold)
    faces = [[f for k in g for f in members[k]] for g in groups]
    faces.sort(key=lambda g: (-len(g), min(g)))
    labels = np.empty(n, dtype=np.int64)
    for k, g in enumerate(faces):
        labels[g] = k
    return labels


def _initial_groups(keys: list[int]) -> list[list[int]]:
    """The faces of each initial group: one per track (key ≥ 0), one per lone face (key < 0)."""
    members: list[list[int]] = []
    by_track: dict[int, int] = {}
    for i, t in enumerate(keys):
        if t >= 0 and t in by_track:
            members[by_track[t]].append(i)
        else:
            if t >= 0:
                by_track[t] = len(members)
            members.append([i])
    return members


def _vote_distances(d: np.ndarray, members: list[list[int]]) -> np.ndarray:
    """Distances between the groups' mean descriptors (their votes); NaN for a group with no
    finite descriptor."""
    valid = np.isfinite(d).all(axis=1)
    votes = [d[[i for i in m if valid[i]]].mean(axis=0) if valid[m].any() else None for m in members]
    has = np.array([v is not None for v in votes])
    vec = np.array([v if v is not None else np.zeros(d.shape[1]) for v in votes])
    sq = (vec * vec).sum(axis=1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * vec @ vec.T, 0.0))
    dist[~has, :] = np.nan  # no vote, no distance
    dist[:, ~has] = np.nan
    return dist


def _average_linkage(dist: np.ndarray, threshold: float) -> list[list[int]]:
    """Groups of the initial groups, merged while their average-linkage distance is below
    `threshold`. Running sums: link(g, h) = sum of distances / number of pairs; after a merge only
    the merged group's row and column change, and each group's nearest neighbour is cached."""
    total = np.where(np.isfinite(dist), dist, 0.0)
    pairs = np.isfinite(dist).astype(np.float64)
    link = np.where(pairs > 0, total / np.maximum(pairs, 1.0), np.inf)
    np.fill_diagonal(link, np.inf)
    alive = np.ones(len(dist), dtype=bool)
    groups = [[k] for k in range(len(dist))]
    nearest = link.argmin(axis=1)
    near = link[np.arange(len(link)), nearest]
    for _ in range(len(dist) - 1):
        k = int(np.argmin(near))
        if not near[k] < threshold:
            break
        i, j = sorted((k, int(nearest[k])))
        total[i] += total[j]
        pairs[i] += pairs[j]
        row = np.where(pairs[i] > 0, total[i] / np.maximum(pairs[i], 1.0), np.inf)
        row[~alive] = np.inf
        row[i] = row[j] = np.inf
        total[:, i], pairs[:, i] = total[i], pairs[i]
        link[i], link[:, i] = row, row
        link[j], link[:, j] = np.inf, np.inf
        alive[j] = False
        near[j] = np.inf
        groups[i].extend(groups[j])
        # Refresh the cache: rows that pointed at i or j look again; others may now prefer i.
        stale = np.union1d(np.flatnonzero(alive & ((nearest == i) | (nearest == j))), [i])
        nearest[stale] = link[stale].argmin(axis=1)
        near[stale] = link[stale, nearest[stale]]
        closer = alive & (row < near)
        nearest[closer], near[closer] = i, row[closer]
    return [g for k, g in enumerate(groups) if alive[k]]
