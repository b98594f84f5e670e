"""Per-layer timing of one convolution's three passes: XLA's own vs core.jaxmodels.fastconv (vs PyTorch).

For each layer shape of the `original` model (and the issue's probe), times the forward, the input
gradient (dx) and the weight gradient (dw), interleaving the variants round by round so that a
noisy, shared machine hurts them alike; prints the median of the rounds in ms.

    python benchmarks/conv_layers.py                # all shapes
    python benchmarks/conv_layers.py --only 0 4     # some shapes (indices into SHAPES; 10-18: lite)
    python benchmarks/conv_layers.py --torch        # add PyTorch eager (needs the `bench` extra)
    python benchmarks/conv_layers.py --xla-dx-stride2   # also time XLA's own dx for stride-2 layers
                                                    # (naive loops on XLA:CPU: minutes per layer)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

# (label, batch, size, in, out, kernel, stride): batch 32 = 16 faces per side through the shared encoder.
LITE = [
    ("lite enc1", 32, 64, 3, 32, 5, 2),
    ("lite enc2", 32, 32, 32, 64, 5, 2),
    ("lite enc3", 32, 16, 64, 128, 5, 2),
    ("lite enc4", 32, 8, 128, 256, 5, 2),
    ("lite upscale", 32, 4, 256, 512, 3, 1),
    ("lite dec1", 16, 8, 128, 256, 3, 1),
    ("lite dec2", 16, 16, 64, 128, 3, 1),
    ("lite dec3", 16, 32, 32, 64, 3, 1),
    ("lite dec out", 16, 64, 16, 3, 5, 1),
]
SHAPES = [
    ("issue probe", 32, 32, 64, 128, 3, 1),
    ("enc1", 32, 64, 3, 128, 5, 2),
    ("enc2", 32, 32, 128, 256, 5, 2),
    ("enc3", 32, 16, 256, 512, 5, 2),
    ("enc4", 32, 8, 512, 1024, 5, 2),
    ("upscale", 32, 4, 1024, 2048, 3, 1),
    ("dec1", 16, 8, 512, 1024, 3, 1),
    ("dec2", 16, 16, 256, 512, 3, 1),
    ("dec3", 16, 32, 128, 256, 3, 1),
    ("dec out", 16, 64, 64, 3, 5, 1),
] + LITE


def _median_ms(fns: dict, rounds: int) -> dict:
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


def jax_fns(b, n, c, o, k, s, xla_dx_stride2: bool):
    import jax
    from jax import lax

    from core.jaxmodels import fastconv

    dn = ("NHWC", "HWIO", "NHWC")
    kx, kw, kd = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (b, n, n, c))
    w = jax.random.normal(kw, (k, k, c, o)) * 0.05
    pads = fastconv._resolve_padding((n, n), (k, k), (s, s), "SAME")
    dy = jax.random.normal(kd, (b, -(-n // s), -(-n // s), o))

    def xla(x, w):
        return lax.conv_general_dilated(x, w, (s, s), "SAME", dimension_numbers=dn)

    fwd = jax.jit(xla)
    xla_dx = jax.jit(lambda x, w, dy: jax.vjp(lambda x: xla(x, w), x)[1](dy)[0])
    xla_dw = jax.jit(lambda x, w, dy: jax.vjp(lambda w: xla(x, w), w)[1](dy)[0])
    fast_dx = jax.jit(lambda w, dy: fastconv.input_grad(dy, w, x.shape, (s, s), pads))
    fast_dw = jax.jit(lambda x, dy: fastconv.weight_grad(x, dy, w.shape, (s, s), pads))

    def run(f, *a):
        return lambda: jax.block_until_ready(f(*a))

    fns = {"fwd": run(fwd, x, w), "dx xla": run(xla_dx, x, w, dy), "dx fast": run(fast_dx, w, dy),
           "dw xla": run(xla_dw, x, w, dy), "dw fast": run(fast_dw, x, dy)}
    if s > 1 and not xla_dx_stride2:
        del fns["dx xla"]
    for f in fns.values():  # compile
        f()
    np.testing.assert_allclose(fast_dw(x, dy), xla_dw(x, w, dy), rtol=1e-3, atol=1e-3 * b * n * n / s / s)
    return fns


def torch_fns(b, n, c, o, k, s):
    import torch

    x = torch.randn(b, c, n, n, requires_grad=True)
    conv = torch.nn.Conv2d(c, o, k, stride=s, padding=k // 2, bias=False)
    with torch.no_grad():
        y = conv(x)
    dy = torch.randn_like(y)

    def fwd():
        with torch.no_grad():
            conv(x)

    def grad_x():
        torch.autograd.grad(conv(x), [x], dy)

    def grad_w():
        torch.autograd.grad(conv(x), [conv.weight], dy)

    fns = {"torch fwd": fwd, "torch fwd+dx": grad_x, "torch fwd+dw": grad_w}
    for f in fns.values():
        f()
    return fns


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", type=int, nargs="*", help="indices into SHAPES")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--torch", action="store_true")
    p.add_argument("--xla-dx-stride2", action="store_true")
    a = p.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; median of {a.rounds} interleaved rounds, ms")
    for i, (label, b, n, c, o, k, s) in enumerate(SHAPES):
        if a.only and i not in a.only:
            continue
        fns = jax_fns(b, n, c, o, k, s, a.xla_dx_stride2)
        if a.torch:
            fns.update(torch_fns(b, n, c, o, k, s))
        r = _median_ms(fns, a.rounds)
        gflop = 2 * b * (-(-n // s)) ** 2 * k * k * c * o / 1e9
        cells = "  ".join(f"{key} {v:7.1f}" for key, v in r.items())
        print(f"[{i}] {label:11s} B{b} {n}x{n} {c}->{o} k{k} s{s} ({gflop:5.2f} GFLOP/pass)  {cells}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
