"""Tolerances that hold on any x86 CPU: scaled to the magnitude of what is summed.

Two correct float32 sums of the same K terms differ when they add in another order (XLA:CPU
vectorises reductions by the CPU's SIMD width, so an Intel and an AMD machine order them
differently). Their difference is bounded by about K · eps · max|term|; an absolute 1e-5 is not,
once values reach tens. A wrong formula is off by far more than this bound, so tests stay sharp.
"""

from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


def sum_atol(terms: int, max_term: float, eps: float = EPS32) -> float:
    """The most two summation orders of `terms` values of magnitude ≤ `max_term` can differ by."""
    return max(int(terms), 1) * eps * float(max_term)


def mean_rtol(terms: int, eps: float = EPS32) -> float:
    """Relative bound for a mean (or sum) of `terms` non-negative values, such as an L1 loss."""
    return max(int(terms), 1) * eps


def _peak(a) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64))))


def conv_atols(x, w, dy, strides=(1, 1)) -> dict[str, float]:
    """Per-output tolerances of a 2-D NHWC/HWIO convolution and its two gradients:
    y sums kh·kw·C products x·w, dx sums about kh·kw·O/(sh·sw) products dy·w (at least kh·kw·O/
    stride taps, at most kh·kw·O), dw sums N·Ho·Wo products x·dy."""
    kh, kw, c, o = np.shape(w)
    n, ho, wo, _ = np.shape(dy)
    return {
        "y": sum_atol(kh * kw * c, _peak(x) * _peak(w)),
        "dx": sum_atol(kh * kw * o, _peak(dy) * _peak(w)),
        "dw": sum_atol(n * ho * wo, _peak(x) * _peak(dy)),
    }


def assert_sums_close(got, want, atol: float, err_msg: str = "") -> None:
    """Equal up to a summation-order bound (rtol 0: the bound already carries the scale)."""
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=atol, err_msg=err_msg)


def assert_adam_weights_close(a, b, lr: float, steps: int, err_msg: str = "") -> None:
    """Weights after `steps` Adam updates by two programs that sum each gradient in another order.

    Adam divides by the gradient's own scale, so an element whose gradient is ~0 can move by a
    fair part of the learning rate on float noise alone: no element may be further apart than
    Adam can move one in that many steps (|update| ≤ lr · (1-β1)/√(1-β2) ≈ 3.2 lr per step).
    Whether the two runs trained alike is `assert_same_training`'s question."""
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    bound = 3.2 * lr * steps
    assert diff.max() <= bound, f"{err_msg}: {diff.max():.3g} > {bound:.3g}"


def training_gap(a: dict, b: dict, start: dict) -> float:
    """How far apart two runs ended, as a share of how far the reference `b` moved from `start`
    (Σ|a−b| / Σ|b−start| over every weight of the model)."""
    apart = sum(float(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)).sum()) for k in b)
    moved = sum(float(np.abs(np.asarray(b[k], np.float64) - np.asarray(start[k], np.float64)).sum()) for k in b)
    return apart / max(moved, 1e-30)


def assert_same_training(a: dict, b: dict, start: dict, lr: float, steps: int, share: float = 0.1) -> None:
    """Two runs of the same training from `start`, `steps` Adam steps long, differing only in
    summation order: every weight within Adam's bound, and the two apart by at most `share` of
    how far the training moved the model. Float noise moves a few near-zero-gradient weights
    (a few % of a layer, seen in full-suite runs); a real error (other faces, gradients not
    averaged over the devices, a step lost) moves the runs apart about as far as they moved."""
    assert a.keys() == b.keys() == start.keys()
    for k in b:
        assert_adam_weights_close(a[k], b[k], lr, steps, err_msg=k)
    gap = training_gap(a, b, start)
    assert gap <= share, f"the runs ended {gap:.1%} of the training's movement apart"
