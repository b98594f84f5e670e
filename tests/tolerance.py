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

    Adam divides by the gradient's own scale, so an element whose gradient is ~0 can move by a fair
    part of the learning rate on float noise alone. What must hold: no element apart by more than
    Adam can move one in that many steps (|update| ≤ lr · (1-β1)/√(1-β2) ≈ 3.2 lr per step), and
    nearly all (≥ 99.5 %) of them equal to float precision. A real error (other faces, gradients not
    averaged, a step missing) moves most elements by about the learning rate."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = np.abs(a - b)
    bound = 3.2 * lr * steps
    assert diff.max() <= bound, f"{err_msg}: {diff.max():.3g} > {bound:.3g}"
    tight = 1e-5 * (1 + np.abs(b))
    assert np.mean(diff > tight) <= 0.005, f"{err_msg}: {np.mean(diff > tight):.2%} of elements differ"
