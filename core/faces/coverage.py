"""Pose coverage at a glance: how a side's kept faces spread over yaw × pitch, and which poses of
the target footage (side A's sources: the faces a conversion replaces) side B has no face for.

A model fills in a pose it never saw poorly, so the bins where A's footage has faces and B has
none, in that bin or the next (`reach`: within 10–20°), are where a swap is likely to break;
the seed's advice (find footage whose poses suit B) made visible. Yaw and pitch are the curation scores (core.faces.scores.head_pose, degrees;
yaw > 0: the nose points to the image's right, pitch > 0: up), binned in BIN_DEG steps centred on
frontal; faces beyond the outer edges count in the outer bins.

API: `histogram(yaw, pitch) -> counts`, `bin_of(yaw, pitch)`, `PoseHistogram`, `side_histogram(table, rows=None)`,
`target_histogram(project, source_id=None)`, `reached(other)`, `lacking(target, other)`,
`covered_share(target, other)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BIN_DEG = 10.0
YAW_BINS = 11  # -55..55°
PITCH_BINS = 7  # -35..35°


def _bin(values: np.ndarray, bins: int) -> np.ndarray:
    half = bins * BIN_DEG / 2
    return np.clip(np.floor((values + half) / BIN_DEG), 0, bins - 1).astype(np.int64)


def histogram(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(PITCH_BINS, YAW_BINS) face counts; row 0 is the highest pitch (nose up), column 0 the most
    negative yaw, as the faces would sit on screen. Faces without a pose are left out."""
    yaw, pitch = np.asarray(yaw, np.float64), np.asarray(pitch, np.float64)
    ok = np.isfinite(yaw) & np.isfinite(pitch)
    counts = np.zeros((PITCH_BINS, YAW_BINS), np.int64)
    np.add.at(counts, (PITCH_BINS - 1 - _bin(pitch[ok], PITCH_BINS), _bin(yaw[ok], YAW_BINS)), 1)
    return counts


def bin_of(yaw: float, pitch: float) -> tuple[int, int] | None:
    """The (row, column) of `histogram`'s bin a face of this pose counts in; None without a pose."""
    if not (np.isfinite(yaw) and np.isfinite(pitch)):
        return None
    return (PITCH_BINS - 1 - int(_bin(np.float64(pitch), PITCH_BINS)), int(_bin(np.float64(yaw), YAW_BINS)))


def bin_edges() -> tuple[np.ndarray, np.ndarray]:
    """(yaw edges, pitch edges) in degrees, ascending (the outer bins also take what lies beyond)."""
    return (np.arange(YAW_BINS + 1) * BIN_DEG - YAW_BINS * BIN_DEG / 2,
            np.arange(PITCH_BINS + 1) * BIN_DEG - PITCH_BINS * BIN_DEG / 2)


@dataclass(frozen=True)
class PoseHistogram:
    """Counts of faces per pose bin (`histogram`'s layout) and what they are the faces of."""

    counts: np.ndarray
    label: str

    @property
    def total(self) -> int:
        return int(self.counts.sum())


def side_histogram(table, rows: np.ndarray | None = None, label: str | None = None) -> PoseHistogram:
    """The poses of a ScoreTable's kept faces (or of these rows)."""
    c = table.columns
    rows = np.flatnonzero(~c["removed"]) if rows is None else np.asarray(rows, np.int64)
    return PoseHistogram(histogram(c["yaw"][rows], c["pitch"][rows]), label or f"side {table.side.upper()}")


def target_histogram(project, source_id: str | None = None, table=None) -> PoseHistogram:
    """The poses of side A's kept faces (the footage a conversion works on), or of one source of it."""
    from core.faces.curation import face_table

    table = table if table is not None else face_table(project, "a")
    keep = ~table.columns["removed"]
    if source_id is not None:
        keep &= table.columns["source"] == source_id
    return side_histogram(table, np.flatnonzero(keep), label=f"target {source_id}" if source_id else "target (A)")


def reached(other: PoseHistogram, reach: int = 1) -> np.ndarray:
    """Bool mask of the bins `other` has a face in or within `reach` bins of (one bin: a pose
    10–20° away, which a model fills in well enough)."""
    have = other.counts > 0
    out = have.copy()
    rows, cols = have.shape
    for dr in range(-reach, reach + 1):
        for dc in range(-reach, reach + 1):
            shifted = np.zeros_like(have)
            shifted[max(0, dr):rows + min(0, dr), max(0, dc):cols + min(0, dc)] = \
                have[max(0, -dr):rows + min(0, -dr), max(0, -dc):cols + min(0, -dc)]
            out |= shifted
    return out


def lacking(target: PoseHistogram, other: PoseHistogram, reach: int = 1) -> np.ndarray:
    """Bool mask of the bins where the target has faces and `other` has none within `reach` bins."""
    return (target.counts > 0) & ~reached(other, reach)


def covered_share(target: PoseHistogram, other: PoseHistogram, reach: int = 1) -> float | None:
    """The share of the target's faces in bins `other` reaches (None: no target faces)."""
    if target.total == 0:
        return None
    return float(target.counts[reached(other, reach)].sum() / target.total)
