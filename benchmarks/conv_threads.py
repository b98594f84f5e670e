"""How many cores XLA:CPU's forward convolution uses, with YNNPACK's kernels and with XLA's own.

For each layer shape of the lite and original models, times the jitted forward convolution and
reports milliseconds, GFLOP/s and cores used (process CPU time / wall time), once in a process
with facepair's XLA:CPU flag (core/jaxmodels/xla_cpu.py: XLA's own, multithreaded kernels) and once
without it (FACEPAIR_XLA_CPU=default: YNNPACK, which runs many of these shapes on one core).
Flags are read when the backend starts, so each setting runs in its own interpreter.

    python benchmarks/conv_threads.py                # lite and original shapes
    python benchmarks/conv_threads.py --only 11 17   # some shapes (indices into conv_layers.SHAPES)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _measure(indices: list[int], calls: int) -> list[dict]:
    import jax
    import numpy as np
    from jax import lax

    from core.jaxmodels import xla_cpu

    xla_cpu.configure()  # facepair's flag unless FACEPAIR_XLA_CPU=default
    from benchmarks.conv_layers import SHAPES

    out = []
    for i in indices:
        label, b, n, c, o, k, s = SHAPES[i]
        rng = np.random.default_rng(0)
        x = jax.numpy.asarray(rng.random((b, n, n, c), np.float32))
        w = jax.numpy.asarray(rng.random((k, k, c, o), np.float32))
        f = jax.jit(lambda x, w, s=s: lax.conv_general_dilated(x, w, (s, s), "SAME",
                                                                dimension_numbers=("NHWC", "HWIO", "NHWC")))
        jax.block_until_ready(f(x, w))
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(calls):
            jax.block_until_ready(f(x, w))
        wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        flops = 2 * b * (-(-n // s)) ** 2 * k * k * c * o
        out.append({"layer": label, "ms": 1e3 * wall / calls, "gflops": flops * calls / wall / 1e9,
                    "cores": cpu / wall})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", type=int, nargs="*", default=list(range(1, 19)))
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(_measure(a.only, a.calls)))
        return 0
    runs = {}
    for name, extra in (("YNNPACK", {"FACEPAIR_XLA_CPU": "default"}), ("XLA", {})):
        env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "FACEPAIR_XLA_CPU")}
        env.update(extra, JAX_PLATFORMS="cpu")
        cmd = [sys.executable, __file__, "--child", "--calls", str(a.calls), "--only", *map(str, a.only)]
        runs[name] = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)
    print(f"forward convolution, {a.calls} calls each, load {os.getloadavg()[0]:.2f}")
    print(f"{'layer':14s} {'YNNPACK ms':>10s} {'GFLOP/s':>8s} {'cores':>5s}   {'XLA ms':>7s} {'GFLOP/s':>8s} {'cores':>5s}")
    for y, e in zip(runs["YNNPACK"], runs["XLA"], strict=True):
        print(f"{y['layer']:14s} {y['ms']:10.2f} {y['gflops']:8.1f} {y['cores']:5.2f}   "
              f"{e['ms']:7.2f} {e['gflops']:8.1f} {e['cores']:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
