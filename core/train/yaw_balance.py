"""Batches balanced over head yaw (`--uniform-yaw`, DeepFaceLab's `uniform_yaw`).

A talking-head clip is mostly frontal: drawn uniformly, its few turned faces are a small share of
each batch, and the model draws them worst. With uniform yaw a step draws a yaw bin first (every
bin that has faces alike), then a face within it. On the device that is one uniform draw from an
index table in which every bin holds the same number of entries (its faces in turn), so the jitted
step's sampling stays a `randint` and a gather.

API: `face_yaws(landmarks)`, `balanced_picks(yaws, width)`, `describe(yaws, width)`.
"""

from __future__ import annotations

import numpy as np

YAW_BIN_DEG = 3.0  # the bins' width: about what separates one head turn from the next in a clip


def face_yaws(landmarks: np.ndarray) -> np.ndarray:
    """Head yaw in degrees of each face from its 68 landmarks (core.faces.scores.head_pose; NaN where
    the solve fails). On the crops' landmarks: the face upright, as the model sees it (a camera's roll
    mixes pitch into yaw; the crop has none)."""
    from core.faces.scores import head_pose

    return np.array([head_pose(lm)[0] for lm in np.asarray(landmarks)], np.float64)


def _bins(yaws: np.ndarray, width: float) -> np.ndarray:
    """Each face's bin; faces without a yaw (NaN) share one bin of their own."""
    yaws = np.asarray(yaws, np.float64)
    out = np.full(len(yaws), np.iinfo(np.int64).min, np.int64)
    ok = np.isfinite(yaws)
    out[ok] = np.floor(yaws[ok] / width).astype(np.int64)
    return out


def balanced_picks(yaws: np.ndarray, width: float = YAW_BIN_DEG) -> np.ndarray:
    """The index table (int32) a uniform draw from which picks a bin uniformly, then a face of it:
    each bin gets as many entries as the fullest bin has faces, its own faces repeated in turn, so
    every face is in the table and the bins' shares are equal."""
    if not width > 0:
        raise ValueError(f"the yaw bins' width must be above 0, not {width}")
    bins = _bins(yaws, width)
    if not len(bins):
        raise ValueError("no faces to balance")
    ids, counts = np.unique(bins, return_counts=True)
    fullest = int(counts.max())
    return np.concatenate([np.resize(np.flatnonzero(bins == b), fullest) for b in ids]).astype(np.int32)


def describe(yaws: np.ndarray, width: float = YAW_BIN_DEG) -> str:
    """One line for the job's messages: the bins, the range of yaw and the fullest bin's share."""
    bins = _bins(yaws, width)
    _, counts = np.unique(bins, return_counts=True)
    finite = np.asarray(yaws)[np.isfinite(yaws)]
    span = f"yaw {finite.min():+.0f}° to {finite.max():+.0f}°" if len(finite) else "no yaw"
    return (f"{len(counts)} bins of {width:g}° ({span}); the fullest held {counts.max() / len(bins):.0%} "
            f"of the faces, now {1 / len(counts):.0%} of each batch")
