"""Where a training step's time goes on XLA:CPU: one profiled step, summed by kind of op and by source.

    python benchmarks/profile_step.py --preset lite --batch 16
    FACEPAIR_CONV=xla python benchmarks/profile_step.py --preset lite   # XLA's own conv gradients

Runs `Trainer.train_steps` (as `facepair train` does) once to compile, then once under
`jax.profiler.trace` with XLA:CPU's per-op trace events on (`--xla_cpu_enable_xprof_traceme`),
and prints milliseconds per step:
- by kind: `__ynn_fusion` (YNNPACK convolutions and matmuls), `convolution(` (convolutions XLA runs
  itself: Eigen or a naive loop), `kLoop` fusions (elementwise, copies, pads, slices),
  `concatenate`, ...;
- the slowest ops with their HLO;
- the non-library ops grouped by the JAX operation they come from (op_name metadata).
Times are per op as the trace records them (the thunk executor runs ops one after another, each
using the cores), so on a busy machine they grow with the load like everything else.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="lite")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args(argv)
    flag = "--xla_cpu_enable_xprof_traceme=true"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    from core.jaxmodels.step import Trainer, synthetic_faces

    tr = Trainer(a.preset, a.batch)
    st = tr.init_state(0)
    data = tr.put_data(synthetic_faces(tr.preset, 64))
    hlo = tr._train.lower(st, data, 1).compile().as_text()  # the same program train_steps runs
    st, m = tr.train_steps(st, data, 1)
    jax.block_until_ready(m)
    steps = tr.steps_per_call
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        with jax.profiler.trace(d, create_perfetto_trace=True):
            st, m = tr.train_steps(st, data)
            jax.block_until_ready(m)
        wall = time.perf_counter() - t
        trace = glob.glob(f"{d}/**/*.trace.json.gz", recursive=True)[0]
        with gzip.open(trace) as f:
            events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    dur = collections.Counter()
    for e in events:
        if e.get("ph") == "X":
            dur[e["name"]] += e.get("dur", 0)
    defs = {}
    for line in hlo.splitlines():
        mm = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (.*)", line)
        if mm:
            defs[mm.group(1)] = mm.group(2)
    kinds, sources = collections.Counter(), collections.Counter()
    for name, us in dur.items():
        if name not in defs:
            continue
        text = defs[name]
        kind = re.search(r"__ynn_fusion|__xnn_fusion|kind=k\w+|convolution\(|dot\(|custom-call", text)
        kinds[kind.group(0) if kind else text.split("(")[0].split(" ")[-1]] += us
        if "ynn_fusion" not in text and "convolution(" not in text:
            src = re.search(r'op_name="([^"]*)"', text)
            sources[re.sub(r"jit\(_train_steps\)/", "", src.group(1))[:90] if src else "?"] += us
    print(f"{a.preset} batch {a.batch}: {steps} step(s) profiled, wall {wall * 1e3:.0f} ms, "
          f"load {os.getloadavg()[0]:.2f}, FACEPAIR_CONV={os.environ.get('FACEPAIR_CONV', 'auto')}")
    print("\nms/step by kind")
    for k, us in kinds.most_common():
        print(f"  {us / 1e3 / steps:9.1f}  {k}")
    print(f"\nslowest {a.top} ops")
    for k, us in [kv for kv in dur.most_common() if kv[0] in defs][:a.top]:
        print(f"  {us / 1e3 / steps:9.1f}  {k}: {defs[k][:160]}")
    print("\nother ops by source (ms/step)")
    for k, us in sources.most_common(a.top):
        print(f"  {us / 1e3 / steps:9.1f}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
