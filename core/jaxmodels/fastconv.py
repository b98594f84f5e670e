"""A 2-D convolution with XLA's own forward and a backward pass that XLA:CPU runs fast.

Why: on XLA:CPU (jaxlib 0.10) the forward convolution goes to a fast library kernel (YNNPACK),
but the gradients JAX derives from it do not:
- the weight gradient is a convolution whose "window" is the whole output map and whose batch is
  the input channels: 3-10x slower than the forward for a 3x3 stride-1 conv, and much worse inside
  a while loop (lax.scan);
- the input gradient of a strided conv is a convolution with *input dilation* (zeros between the
  pixels of dy), which no library kernel takes: XLA:CPU runs it as a naive loop nest (about two
  minutes for the original model's 5x5 stride-2 512->1024 layer at batch 32);
- even at stride 1 the input gradient's kernel comes out in the "01oi" layout, which the library
  does not take either (a naive loop again).
docs/performance.md has the measurements.

So, in a custom VJP:
- forward: `lax.conv_general_dilated` itself (bit-identical outputs, inference unchanged);
- weight gradient: matrix products over batch x pixels, one per kernel tap (x's channels-first
  shifted slice times dy), or, when the conv narrows at stride 1, with dy's taps (per kernel row,
  or all taps as flat shifts of a channels-first dy). Where XLA:CPU runs convolutions with its own
  multithreaded kernels (core/jaxmodels/xla_cpu.py), small layers (XLA_DW_MAX_FLOPS) take XLA's
  own weight gradient instead: faster there;
- input gradient: for small maps, dy @ w^T then col2im; otherwise the sub-pixel (phase)
  decomposition into stride-1 convs with an explicitly transposed (HWIO) kernel. No input
  dilation, no multiplications by inserted zeros.

`conv2d(x, w, strides, padding)` is what the models call (core/jaxmodels/layers.conv2d, on a CPU:
`enabled()`); `conv_general_dilated` has `lax.conv_general_dilated`'s signature for other callers,
and sends anything outside the fast path (other layouts, dilation, groups, explicit precision) to
lax unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Sequence
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from core.jaxmodels import xla_cpu

_DN = ("NHWC", "HWIO", "NHWC")
Pads = tuple[tuple[int, int], tuple[int, int]]


_PLAIN = contextvars.ContextVar("facepair_plain_convs", default=False)


@contextlib.contextmanager
def plain_convs() -> Iterator[None]:
    """Models traced inside use XLA's own convolution and the plain output conv, whatever the
    backend: what an exporter (core/export) needs, since a custom VJP and the space-to-depth trick
    are training-speed devices that other runtimes gain nothing from."""
    token = _PLAIN.set(True)
    try:
        yield
    finally:
        _PLAIN.reset(token)


def enabled() -> bool:
    """Whether models should use this convolution: on XLA:CPU, unless FACEPAIR_CONV says otherwise.

    FACEPAIR_CONV=fast forces it on (any backend), =xla forces XLA's own convolution (to compare);
    unset or `auto`: on when JAX's default backend is the CPU. GPUs keep XLA's convolution, whose
    gradients cuDNN runs well. Never inside `plain_convs()`.
    """
    if _PLAIN.get():
        return False
    choice = os.environ.get("FACEPAIR_CONV", "auto").strip().lower()
    if choice in ("fast", "fastconv"):
        return True
    if choice == "xla":
        return False
    return jax.default_backend() == "cpu"


def conv2d(x: jax.Array, w: jax.Array, strides: Sequence[int] = (1, 1), padding: str | Sequence = "SAME"):
    """NHWC input, HWIO kernel, no dilation, one group: the fast-backward convolution."""
    strides = tuple(int(s) for s in strides)
    pads = _resolve_padding(x.shape[1:3], w.shape[0:2], strides, padding)
    return _conv2d(x, w, strides, pads)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None, **kwargs):
    """Drop-in for `lax.conv_general_dilated`: the fast path where it applies, lax otherwise."""
    if _fast_path_applies(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                          feature_group_count, batch_group_count, precision, preferred_element_type, kwargs):
        return conv2d(lhs, rhs, window_strides, padding)
    extra = dict(kwargs)
    if preferred_element_type is not None:
        extra["preferred_element_type"] = preferred_element_type
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                    rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                    feature_group_count=feature_group_count,
                                    batch_group_count=batch_group_count, precision=precision, **extra)


def _fast_path_applies(lhs, rhs, strides, padding, lhs_dilation, rhs_dilation, dn, groups, batch_groups,
                       precision, preferred, kwargs) -> bool:
    if lhs.ndim != 4 or rhs.ndim != 4 or len(strides) != 2:
        return False
    if any(d != 1 for d in (lhs_dilation or (1, 1))) or any(d != 1 for d in (rhs_dilation or (1, 1))):
        return False
    if groups != 1 or batch_groups != 1 or precision is not None:
        return False
    if preferred is not None and jnp.dtype(preferred) != jnp.result_type(lhs, rhs):
        return False
    if any(v is not None for v in kwargs.values()):  # e.g. out_sharding: leave it to lax
        return False
    if isinstance(padding, str) and padding.upper() not in ("SAME", "VALID"):
        return False
    if lhs.dtype != rhs.dtype:
        return False
    return _is_nhwc_hwio(dn)


def _is_nhwc_hwio(dn) -> bool:
    if dn is None:
        return False
    if isinstance(dn, lax.ConvDimensionNumbers):
        return (tuple(dn.lhs_spec), tuple(dn.rhs_spec), tuple(dn.out_spec)) == ((0, 3, 1, 2), (3, 2, 0, 1),
                                                                                (0, 3, 1, 2))
    return tuple(dn) == _DN


def _resolve_padding(in_hw, k_hw, strides, padding) -> Pads:
    if isinstance(padding, str):
        return tuple(tuple(p) for p in lax.padtype_to_pads(tuple(in_hw), tuple(k_hw), strides, padding.upper()))
    return tuple((int(lo), int(hi)) for lo, hi in padding)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv2d(x, w, strides, pads):
    return lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_DN)


def _conv2d_fwd(x, w, strides, pads):
    return _conv2d(x, w, strides, pads), (x, w)


def _conv2d_bwd(strides, pads, res, dy):
    x, w = res
    if _xla_weight_grad_applies(dy.shape, w.shape):
        dw = jax.vjp(lambda w_: lax.conv_general_dilated(x, w_, strides, pads, dimension_numbers=_DN), w)[1](dy)[0]
    else:
        dw = weight_grad(x, dy, w.shape, strides, pads)
    return input_grad(dy, w, x.shape, strides, pads), dw


# Above this many FLOPs per pass the per-tap weight gradient wins in the whole step, even with
# XLA's own convolutions (original: 4.02 s a step with the taps, 4.53 s with XLA's everywhere);
# below it XLA's wins (lite: 277 vs 335 ms; original's enc1 and dec out: even). docs/performance.md.
XLA_DW_MAX_FLOPS = 2e9


def _xla_weight_grad_applies(dy_shape, w_shape) -> bool:
    """XLA's own weight gradient (a convolution over the batch) where XLA runs convolutions with its
    own multithreaded kernels (xla_cpu.eigen_convs) and the layer is small."""
    if not xla_cpu.eigen_convs():
        return False
    kh, kw, c, o = w_shape
    return 2 * dy_shape[0] * dy_shape[1] * dy_shape[2] * kh * kw * c * o <= XLA_DW_MAX_FLOPS


_conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def weight_grad(x, dy, w_shape, strides, pads):
    """dL/dw as matrix products over batch x pixels, laid out so no big operand is transposed.

    Usually one product per kernel tap (i, j): x's channels-first, shifted, strided slice
    (C, B*Ho*Wo) @ dy (B*Ho*Wo, O). x is transposed once (C first), each tap's slice is one
    copy, and the products take both operands as they lie. (An im2col matrix of all taps costs
    two more passes over K*K copies of x: a concatenation and a transposition for the matmul.)
    When the conv narrows (O < C) at stride 1, the taps are taken of dy instead (K*K*O channels:
    75 instead of 1600 for a decoder's last 5x5 conv to RGB): `_weight_grad_narrow`. (lite's and
    original's decoders now run that conv on the space-to-depth map, core/jaxmodels/subpixel.py;
    presets with a residual block before it still come here.)
    """
    kh, kw, c, o = w_shape
    sh, sw = strides
    b, ho, wo = dy.shape[0], dy.shape[1], dy.shape[2]
    acc = jnp.float32 if x.dtype in (jnp.bfloat16, jnp.float16) else None
    zero = jnp.zeros((), x.dtype)
    if strides == (1, 1) and o < c and NARROW_DW != "concat":
        return _weight_grad_narrow(x, dy, w_shape, pads, acc)
    if strides == (1, 1) and o < c:
        # dw[i, j] = sum_u xp[u]^T dy[u - (i, j)]: dy shifted by each tap, zero outside.
        xp = lax.pad(x, zero, ((0, 0, 0), (*pads[0], 0), (*pads[1], 0), (0, 0, 0)))
        cols = [lax.pad(dy, zero, ((0, 0, 0), (i, kh - 1 - i, 0), (j, kw - 1 - j, 0), (0, 0, 0)))
                for i in range(kh) for j in range(kw)]
        dyp = jnp.concatenate(cols, axis=-1) if len(cols) > 1 else cols[0]  # (B, Hp, Wp, kh*kw*O)
        dw = lax.dot_general(xp, dyp, (((0, 1, 2), (0, 1, 2)), ((), ())), preferred_element_type=acc)
        return dw.reshape(c, kh, kw, o).transpose(1, 2, 0, 3).astype(x.dtype)  # (C, kh*kw*O) -> HWIO
    xt = lax.pad(jnp.transpose(x, (3, 0, 1, 2)), zero, ((0, 0, 0), (0, 0, 0), (*pads[0], 0), (*pads[1], 0)))
    d2 = dy.reshape(b * ho * wo, o)
    taps = []
    for i in range(kh):
        for j in range(kw):
            t = xt[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw].reshape(c, b * ho * wo)
            taps.append(lax.dot_general(t, d2, (((1,), (0,)), ((), ())), preferred_element_type=acc))
    return jnp.stack(taps).reshape(kh, kw, c, o).astype(x.dtype)


# "concat": the previous narrow-conv weight gradient (one (B, Hp, Wp, K*K*O) concatenation of dy's
# taps), kept to compare; set before a function is traced. docs/performance.md has the timings.
NARROW_DW = "auto"


def _weight_grad_narrow(x, dy, w_shape, pads, acc):
    """dL/dw of a stride-1 conv that narrows (O < C, e.g. a decoder's last 5x5 conv to RGB).

    The taps are taken of dy (O channels, not C), but never as a (B, Hp, Wp, K*K*O) array built
    from O-wide pieces (XLA:CPU writes that concatenation at a few hundred MB/s):
    - few input channels (C <= 32): per kernel row i, x's rows i..i+Ho (one contiguous slice)
      against dy shifted along W only (K copies, built once): K products over batch x pixels;
    - otherwise: dy channels-first on x's padded grid, flattened; tap (i, j) is then a shift of
      the flat index by i*Wp + j (rows of contiguous copies), all K*K taps stacked as rows of one
      (K*K*O, N) matrix times x (N, C) in one product.
    """
    kh, kw, c, o = w_shape
    b, ho, wo = dy.shape[0], dy.shape[1], dy.shape[2]
    zero = jnp.zeros((), x.dtype)
    xp = lax.pad(x, zero, ((0, 0, 0), (*pads[0], 0), (*pads[1], 0), (0, 0, 0)))  # (B, Hp, Wp, C)
    hp, wp = xp.shape[1], xp.shape[2]
    if c <= 32:
        d = jnp.concatenate([lax.pad(dy, zero, ((0, 0, 0), (0, 0, 0), (j, wp - wo - j, 0), (0, 0, 0)))
                             for j in range(kw)], axis=-1)  # (B, Ho, Wp, kw*O): d[.., x, j*O+o] = dy[.., x-j, o]
        rows = [lax.dot_general(xp[:, i:i + ho], d, (((0, 1, 2), (0, 1, 2)), ((), ())), preferred_element_type=acc)
                for i in range(kh)]  # each (C, kw*O)
        return jnp.stack(rows).reshape(kh, c, kw, o).transpose(0, 2, 1, 3).astype(x.dtype)
    n = b * hp * wp
    dz = lax.pad(jnp.transpose(dy, (3, 0, 1, 2)), zero,
                 ((0, 0, 0), (0, 0, 0), (0, hp - ho, 0), (0, wp - wo, 0))).reshape(o, n)
    taps = [lax.pad(dz[:, :n - (i * wp + j)], zero, ((0, 0, 0), (i * wp + j, 0, 0)))
            for i in range(kh) for j in range(kw)]
    d = jnp.concatenate(taps, axis=0) if len(taps) > 1 else taps[0]  # (kh*kw*O, N)
    dwt = lax.dot_general(d, xp.reshape(n, c), (((1,), (0,)), ((), ())), preferred_element_type=acc)
    return dwt.reshape(kh, kw, o, c).transpose(0, 1, 3, 2).astype(x.dtype)


def input_grad(dy, w, x_shape, strides, pads):
    """dL/dx, by whichever of two exact formulations suits the layer's shape on XLA:CPU.

    - col2im (`_input_grad_col2im`): one matrix product with the kernel as it is stored, then
      the taps summed back into place. Chosen for small output maps (4x4, or 8x8 at stride 1),
      where convolution kernels are slow, and when K*K*C <= O (e.g. the first 5x5 conv from RGB).
    - phases (`_input_grad_phases`): stride-1 convolutions of dy with the flipped, in/out-swapped
      kernel, one per output phase (one for stride 1). Everywhere else.

    The thresholds come from per-layer timings of the lite and original models on a 2-core AVX2
    CPU (docs/performance.md); both paths are exact, only the speed differs.
    """
    kh, kw, c, o = w.shape
    out_px = dy.shape[1] * dy.shape[2]
    if out_px <= 16 or (out_px <= 64 and strides == (1, 1)) or kh * kw * c <= o:
        return _input_grad_col2im(dy, w, x_shape, strides, pads)
    return _input_grad_phases(dy, w, x_shape, strides, pads)


def _input_grad_col2im(dy, w, x_shape, strides, pads):
    """dL/dx as one matrix product dy (B*Ho*Wo, O) @ w^T (O, K*K*C), then col2im: each tap's slice
    is placed (strided, by interior padding) where it came from and the K*K placements are summed
    in one fused loop. Best where the maps are small and the channels many (a conv kernel spends
    most of its time on borders there)."""
    b, h, wd, c = x_shape
    kh, kw, _, o = w.shape
    sh, sw = strides
    ho, wo = dy.shape[1], dy.shape[2]
    hp, wp = h + pads[0][0] + pads[0][1], wd + pads[1][0] + pads[1][1]
    dp = lax.dot_general(dy, w.reshape(kh * kw * c, o), (((3,), (1,)), ((), ())))  # (B, Ho, Wo, kh*kw*C)
    dp = dp.reshape(b, ho, wo, kh, kw, c)
    zero = jnp.zeros((), dy.dtype)
    acc = None
    for i in range(kh):
        for j in range(kw):
            t = lax.pad(dp[:, :, :, i, j, :], zero,
                        ((0, 0, 0), (i, hp - i - sh * (ho - 1) - 1, sh - 1), (j, wp - j - sw * (wo - 1) - 1, sw - 1),
                         (0, 0, 0)))
            acc = t if acc is None else acc + t
    # From padded-input coordinates back to x: crop the padding (or zero-fill a negative one).
    return lax.pad(acc, zero, ((0, 0, 0), (-pads[0][0], -pads[0][1], 0), (-pads[1][0], -pads[1][1], 0), (0, 0, 0)))


def _axis_phases(n: int, k: int, s: int, lo: int, n_out: int):
    """For one spatial axis: per phase p, (kernel taps r::s, dy padding (lo, hi), phase length)."""
    a_max = -(-n // s)
    out = []
    for p in range(s):
        t = p + lo
        r, q0 = t % s, t // s
        m = max(0, -(-(k - r) // s))
        a_p = max(0, -(-(n - p) // s))
        pad_lo = (m - 1) - q0
        pad_hi = a_p + m - 1 - n_out - pad_lo
        out.append((r, m, (pad_lo, pad_hi), a_p, a_max))
    return out


def _input_grad_phases(dy, w, x_shape, strides, pads):
    """dL/dx for stride s: per output phase (p, q) in s x s, a stride-1 VALID conv of the padded dy
    with the kernel taps r::s (flipped, in/out swapped: explicitly HWIO, the layout XLA:CPU's conv
    library takes; JAX's own transposed conv uses "01oi", which it does not). Then interleaved."""
    b, h, wd, c = x_shape
    kh, kw, _, o = w.shape
    sh, sw = strides
    ho, wo = dy.shape[1], dy.shape[2]
    rows = _axis_phases(h, kh, sh, pads[0][0], ho)
    colsp = _axis_phases(wd, kw, sw, pads[1][0], wo)
    a_max, b_max = rows[0][4], colsp[0][4]
    zero = jnp.zeros((), dy.dtype)
    grid = []
    for r, mh, (plo, phi), a_p, _ in rows:
        line = []
        for q, mw, (qlo, qhi), b_p, _ in colsp:
            if mh == 0 or mw == 0 or a_p == 0 or b_p == 0:
                part = jnp.zeros((b, a_p, b_p, c), dy.dtype)
            else:
                # Taps r, r+s, ... of the kernel, flipped, in/out swapped: a stride-1 VALID conv of dy.
                k = jnp.swapaxes(w[r::sh, q::sw][::-1, ::-1], 2, 3)
                dyp = lax.pad(dy, zero, ((0, 0, 0), (plo, phi, 0), (qlo, qhi, 0), (0, 0, 0)))
                part = lax.conv_general_dilated(dyp, k, (1, 1), "VALID", dimension_numbers=_DN)
            part = jnp.pad(part, ((0, 0), (0, a_max - a_p), (0, b_max - b_p), (0, 0)))
            line.append(part)
        grid.append(jnp.stack(line, axis=3))  # (B, A, Bw, sw, C)
    full = jnp.stack(grid, axis=2)  # (B, A, sh, Bw, sw, C)
    full = full.reshape(b, a_max * sh, b_max * sw, c)
    return full[:, :h, :wd, :]
