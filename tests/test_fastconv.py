"""core.jaxmodels.fastconv: XLA's forward, a custom backward that must equal XLA's gradients.

The reference is JAX's own autodiff of `lax.conv_general_dilated` (and finite differences via
`jax.test_util.check_grads`), over strides, kernel shapes, paddings (SAME, VALID, explicit,
negative) and every weight-gradient path (taps of x; taps of dy when the conv narrows, by rows for
few channels or by flat shifts for more).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

from core.jaxmodels import fastconv
from tests.tolerance import assert_sums_close, conv_atols, sum_atol

DN = ("NHWC", "HWIO", "NHWC")

CASES = [
    # (H, W, C, O, kh, kw, sh, sw, padding)
    (8, 8, 3, 4, 3, 3, 1, 1, "SAME"),
    (8, 8, 3, 8, 5, 5, 2, 2, "SAME"),          # the encoder's 5x5 stride-2 conv
    (9, 7, 2, 3, 5, 3, 2, 2, "SAME"),          # odd sizes, rectangular kernel
    (9, 7, 2, 3, 5, 3, 2, 1, "VALID"),         # mixed strides
    (10, 10, 2, 3, 3, 3, 3, 3, "SAME"),        # stride 3
    (11, 9, 2, 3, 4, 2, 2, 3, "VALID"),        # even kernel
    (8, 8, 2, 3, 1, 1, 2, 2, "SAME"),          # 1x1 strided: phases without taps
    (6, 6, 2, 3, 2, 2, 3, 3, "VALID"),         # kernel smaller than the stride
    (7, 7, 2, 3, 3, 3, 2, 2, ((2, 0), (0, 3))),  # explicit, asymmetric padding
    (8, 8, 2, 2, 5, 5, 2, 2, ((-1, 2), (1, 1))),  # negative padding (a crop)
    (8, 8, 6, 2, 3, 3, 1, 1, "SAME"),          # narrowing conv: dy-side im2col
    (9, 7, 5, 3, 5, 3, 1, 1, "VALID"),         # narrowing, VALID
    (8, 8, 4, 2, 5, 5, 1, 1, ((-1, 2), (1, 1))),  # narrowing, negative padding
    (16, 16, 8, 3, 5, 5, 1, 1, "SAME"),        # the decoders' last conv to RGB, small
    (8, 8, 40, 3, 5, 5, 1, 1, "SAME"),         # narrowing, C > 32: flat-shift taps of dy
    (9, 7, 36, 3, 5, 3, 1, 1, "VALID"),        # the same, VALID, rectangular kernel
    (8, 8, 34, 2, 5, 5, 1, 1, ((-1, 2), (1, 1))),  # the same, negative padding
]


@pytest.fixture(autouse=True)
def taps_weight_gradient(monkeypatch):
    """These tests check facepair's own gradients, so the weight gradient is always the custom one
    here (on XLA:CPU with its own convolutions, small layers otherwise take XLA's; see
    test_small_layers_take_xlas_weight_gradient_where_xla_runs_its_own_convolutions)."""
    monkeypatch.setattr(fastconv, "XLA_DW_MAX_FLOPS", -1)


def _arrays(case, seed=0, dtype=np.float32):
    h, w, c, o, kh, kw, *_ = case
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(2, h, w, c)), dtype)
    k = jnp.asarray(rng.normal(size=(kh, kw, c, o)) / np.sqrt(kh * kw * c), dtype)
    return x, k


def _ref(x, w, strides, padding):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=DN)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:8])) + f"-{c[8]}")
def test_forward_is_xlas_and_gradients_equal_xlas(case):
    x, w = _arrays(case)
    strides, padding = case[6:8], case[8]
    y_ref, vjp_ref = jax.vjp(lambda x, w: _ref(x, w, strides, padding), x, w)
    y, vjp = jax.vjp(lambda x, w: fastconv.conv2d(x, w, strides, padding), x, w)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(y_ref))  # the forward is XLA's own op
    dy = jnp.asarray(np.random.default_rng(1).normal(size=y.shape), jnp.float32)
    tol = conv_atols(x, w, dy, strides)
    for got, want, name in zip(vjp(dy), vjp_ref(dy), ("dx", "dw"), strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype, name
        assert_sums_close(got, want, tol[name], err_msg=name)


@pytest.mark.parametrize("path", ["phases", "col2im"])
def test_both_input_gradient_formulations_equal_xlas(path):
    """input_grad picks one of two exact formulations by layer shape: each must be right everywhere."""
    fn = {"phases": fastconv._input_grad_phases, "col2im": fastconv._input_grad_col2im}[path]
    for case in CASES:
        _check_input_grad(fn, case)


def _check_input_grad(fn, case):
    x, w = _arrays(case)
    strides, padding = case[6:8], case[8]
    y, vjp_ref = jax.vjp(lambda x: _ref(x, w, strides, padding), x)
    dy = jnp.asarray(np.random.default_rng(2).normal(size=y.shape), jnp.float32)
    pads = fastconv._resolve_padding(x.shape[1:3], w.shape[:2], strides, padding)
    got = jax.jit(lambda dy, w: fn(dy, w, x.shape, strides, pads))(dy, w)
    assert_sums_close(got, vjp_ref(dy)[0], conv_atols(x, w, dy, strides)["dx"], err_msg=str(case))


@pytest.mark.parametrize("case", [CASES[1], CASES[5], CASES[9], CASES[10]], ids=["s2", "even", "neg", "narrow"])
def test_gradients_match_finite_differences(case):
    with jax.enable_x64(True):
        x, w = _arrays(case, dtype=np.float64)
        strides, padding = case[6:8], case[8]
        check_grads(lambda x, w: fastconv.conv2d(x, w, strides, padding), (x, w), order=1, modes=["rev"],
                    atol=1e-6, rtol=1e-6)


def test_gradients_inside_jit_and_scan_equal_xlas():
    """The training step differentiates inside jit and lax.scan: same gradients there."""
    x, w = _arrays(CASES[1])

    def loss(conv, w, x):
        def body(carry, _):
            return carry + jnp.sum(jnp.tanh(conv(x, w, (2, 2), "SAME"))), None

        return lax.scan(body, 0.0, None, length=3)[0]

    g_fast = jax.jit(jax.grad(lambda w: loss(fastconv.conv2d, w, x)))(w)
    g_ref = jax.jit(jax.grad(lambda w: loss(_ref, w, x)))(w)
    # dw sums 3 iterations × N·Ho·Wo products x · tanh'(y), |tanh'| ≤ 1
    terms = 3 * x.shape[0] * ((x.shape[1] + 1) // 2) * ((x.shape[2] + 1) // 2)
    assert_sums_close(g_fast, g_ref, sum_atol(terms, float(jnp.abs(x).max())))


def test_bf16_gradients_keep_the_dtype():
    x, w = _arrays(CASES[2])
    x, w = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    y, vjp = jax.vjp(lambda x, w: fastconv.conv2d(x, w, (2, 2), "SAME"), x, w)
    dx, dw = vjp(jnp.ones_like(y))
    assert dx.dtype == jnp.bfloat16 and dw.dtype == jnp.bfloat16
    _, vjp_ref = jax.vjp(lambda x, w: _ref(x.astype(jnp.float32), w.astype(jnp.float32), (2, 2), "SAME"), x, w)
    ref = vjp_ref(jnp.ones(y.shape, jnp.float32))
    np.testing.assert_allclose(np.asarray(dw, np.float32), np.asarray(ref[1], np.float32), rtol=0.05, atol=0.1)


def _dilated(hlo_text: str, side: str) -> bool:
    """Whether any convolution in the StableHLO text has a `side` (lhs/rhs) dilation other than 1."""
    found = re.findall(side + r"_dilate = \[([0-9, ]+)\]", hlo_text)
    return any(int(v) != 1 for f in found for v in f.split(","))


def test_no_input_dilated_or_autodiff_weight_convolutions_in_the_backward():
    """What makes it fast on XLA:CPU, structurally: the strided conv's input gradient has no
    input dilation (XLA:CPU's naive loop) and the weight gradient is a matmul, not a conv whose
    window is the whole image. XLA's own gradient has both (the check can fail)."""
    x = jnp.zeros((2, 16, 16, 8))
    w = jnp.zeros((5, 5, 8, 16))

    def hlo(conv):
        f = jax.grad(lambda x, w: jnp.sum(conv(x, w, (2, 2), "SAME") ** 2), argnums=(0, 1))
        return jax.jit(f).lower(x, w).as_text()

    ref, fast = hlo(_ref), hlo(fastconv.conv2d)
    assert _dilated(ref, "lhs") and _dilated(ref, "rhs")  # XLA's: input-dilated dx, dilated-window dw
    assert not _dilated(fast, "lhs") and not _dilated(fast, "rhs")
    assert fast.count("stablehlo.convolution") == 1 + 4  # the forward + one stride-1 conv per phase
    assert "stablehlo.dot_general" in fast


@pytest.mark.parametrize("eigen", [True, False])
def test_small_layers_take_xlas_weight_gradient_where_xla_runs_its_own_convolutions(monkeypatch, eigen):
    """With XLA:CPU's own (multithreaded) convolutions, a layer of at most XLA_DW_MAX_FLOPS takes
    XLA's weight gradient (a convolution whose window is the whole map); bigger layers, and every
    layer under YNNPACK's convolutions, keep the matmul taps. Either way the gradient is XLA's."""
    monkeypatch.setattr(fastconv.xla_cpu, "eigen_convs", lambda: eigen)
    x, w = _arrays(CASES[1])
    y, vjp_ref = jax.vjp(lambda w: _ref(x, w, (2, 2), "SAME"), w)
    dy = jnp.asarray(np.random.default_rng(3).normal(size=y.shape), jnp.float32)
    flops = 2 * y.size * 5 * 5 * 3
    for limit, xlas in ((flops, eigen), (flops - 1, False)):
        monkeypatch.setattr(fastconv, "XLA_DW_MAX_FLOPS", limit)
        f = jax.jit(lambda w, dy: jax.vjp(lambda w: fastconv.conv2d(x, w, (2, 2), "SAME"), w)[1](dy)[0])
        assert _dilated(f.lower(w, dy).as_text(), "rhs") == xlas, (limit, eigen)
        assert_sums_close(f(w, dy), vjp_ref(dy)[0], conv_atols(x, w, dy, (2, 2))["dw"])


def test_drop_in_for_lax_takes_the_fast_path_only_where_it_applies():
    x, w = _arrays(CASES[0])
    nhwc = lax.conv_dimension_numbers(x.shape, w.shape, DN)
    y = fastconv.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=nhwc)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(_ref(x, w, (1, 1), "SAME")))
    text = jax.jit(jax.grad(lambda w: jnp.sum(fastconv.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=nhwc)))).lower(w).as_text()
    assert "stablehlo.dot_general" in text  # the custom weight gradient
    # Outside the fast path (dilation, groups, NCHW): exactly lax.
    dil = fastconv.conv_general_dilated(x, w, (1, 1), "SAME", rhs_dilation=(2, 2), dimension_numbers=DN)
    np.testing.assert_array_equal(np.asarray(dil), np.asarray(lax.conv_general_dilated(
        x, w, (1, 1), "SAME", rhs_dilation=(2, 2), dimension_numbers=DN)))
    xg, wg = jnp.ones((1, 6, 6, 4)), jnp.ones((3, 3, 2, 4))
    grp = fastconv.conv_general_dilated(xg, wg, (1, 1), "SAME", dimension_numbers=DN, feature_group_count=2)
    assert grp.shape == (1, 6, 6, 4)
    xc = jnp.transpose(x, (0, 3, 1, 2))
    nchw = fastconv.conv_general_dilated(xc, jnp.transpose(w, (3, 2, 0, 1)), (1, 1), "SAME")
    assert_sums_close(nchw, jnp.transpose(_ref(x, w, (1, 1), "SAME"), (0, 3, 1, 2)),
                      conv_atols(x, w, _ref(x, w, (1, 1), "SAME"))["y"])


def test_models_use_it_on_a_cpu_and_the_env_switch(monkeypatch):
    monkeypatch.delenv("FACEPAIR_CONV", raising=False)
    assert fastconv.enabled() == (jax.default_backend() == "cpu")
    monkeypatch.setenv("FACEPAIR_CONV", "xla")
    assert not fastconv.enabled()
    monkeypatch.setenv("FACEPAIR_CONV", "fast")
    assert fastconv.enabled()


def test_a_model_trains_with_the_same_gradients_either_way(monkeypatch):
    """The tiny model (every block: strided encoder, upscales, residuals, mask output) has the
    same loss gradient with fastconv as with XLA's convolution."""
    from flax import nnx

    from core.jaxmodels.architectures import build_model

    model = build_model("tiny", seed=0)
    graphdef, params = nnx.split(model)
    rng = np.random.default_rng(0)
    xa = jnp.asarray(rng.uniform(size=(2, 32, 32, 3)), jnp.float32)
    xb = jnp.asarray(rng.uniform(size=(2, 32, 32, 3)), jnp.float32)

    def loss(params):
        (ra, ma), (rb, mb) = nnx.merge(graphdef, params).reconstruct_both(xa, xb)
        return jnp.mean(jnp.abs(ra - xa)) + jnp.mean(jnp.abs(rb - xb)) + jnp.mean(ma) + jnp.mean(mb)

    grads = {}
    for mode in ("fast", "xla"):
        monkeypatch.setenv("FACEPAIR_CONV", mode)
        grads[mode] = jax.jit(jax.grad(loss))(params)  # traced afresh: the op is chosen at trace time
    flat_fast = jax.tree.leaves(grads["fast"])
    flat_xla = jax.tree.leaves(grads["xla"])
    assert len(flat_fast) == len(flat_xla) > 20
    # each weight's gradient sums the contributions of the batch's 2·32·32 pixels (per side), so
    # two summation orders differ by about that many roundings of the leaf's largest value
    for a, b in zip(flat_fast, flat_xla, strict=True):
        assert_sums_close(a, b, sum_atol(2 * 32 * 32, float(jnp.abs(b).max())))
