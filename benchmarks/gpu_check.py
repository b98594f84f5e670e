#!/usr/bin/env python
"""One part of the GPU check (benchmarks/gpu.sh runs each in its own process, so each preset's
peak device memory is its own):

    python benchmarks/gpu_check.py train PRESET OUT   # batch auto, the plan, the measured step and peak
    python benchmarks/gpu_check.py convert PRESET OUT # the conversion benchmark (its swap stage alone without dlib)
    python benchmarks/gpu_check.py report OUT         # the rows so far, as markdown

Settings from the environment: BATCH (auto or N, default auto), MEMORY (plan for this size instead
of the device's, e.g. 28MB for a CPU smoke test), FACES (per side the batch is chosen for, default
1000; the benchmark itself holds max(64, batch)),
STEPS, REPEATS. Needs jax, flax, optax, numpy; not dlib, Textual or rich.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _memory() -> int | None:
    from core.train import plan as planner
    from core.train.devices import device_memory_bytes

    return planner.parse_memory(os.environ["MEMORY"]) if os.environ.get("MEMORY") else device_memory_bytes()


def _peak_bytes() -> int | None:
    import jax

    try:
        return (jax.local_devices()[0].memory_stats() or {}).get("peak_bytes_in_use")
    except Exception:
        return None


def train(preset: str, out: Path) -> dict:
    """Pick the batch (auto: the plan's largest fit), bench `facepair train`'s step there, and keep
    the plan's bytes beside the measured peak."""
    import jax

    from core.bench import report as bench
    from core.jaxmodels.precision import compute_dtype_name
    from core.train import plan as planner

    faces, asked = int(os.environ.get("FACES", 1000)), os.environ.get("BATCH", "auto")
    dtype = compute_dtype_name(jax.devices()[0].platform)
    cache = out / "plan_cache.json"
    t0 = time.time()
    if asked == "auto":
        choice = planner.auto_batch(preset, faces, _memory(), dtype=dtype, devices=jax.device_count(),
                                    cache_path=cache)
    else:
        choice = {"batch": int(asked), "why": f"batch {asked} (fixed by BATCH)"}
    batch = choice["batch"]
    # The benchmark keeps max(64, batch) synthetic faces on the device (core.bench.train): planned so too.
    plan = planner.with_faces(planner.step_totals(preset, batch, dtype, cache), max(64, batch))
    plan_s = time.time() - t0
    print(f"{preset}: {choice['why']} [{plan_s:.0f} s of plans]", flush=True)
    res = bench.run(["train"], {"train": {"presets": (preset,), "batch": batch,
                                          "steps": int(os.environ.get("STEPS", 20)),
                                          "repeats": int(os.environ.get("REPEATS", 5))}},
                    progress=lambda m: print(m, flush=True))
    (row,) = res["train"]
    row.update(batch_choice=choice["why"], plan=plan, plan_s=round(plan_s, 1), plan_dtype=dtype,
               measured_peak_bytes=_peak_bytes(), machine=res["machine"])
    return row


def convert(preset: str, out: Path) -> dict:
    """The conversion benchmark where dlib is installed; else the swap stage alone (the GPU's part):
    faces/s of the preset's model at conversion's batch."""
    try:
        import dlib  # noqa: F401  (a test shadows it with a module whose import fails, as on the GPU box)

        has_dlib = True
    except ImportError:
        has_dlib = False
    if has_dlib:
        from core.bench import convert as bench_convert

        return {"kind": "full", **bench_convert.run(preset=preset)["convert"]}
    import numpy as np

    from core.bench.convert import FreshModel

    swapper, batch = FreshModel(preset), 32
    faces = np.zeros((batch, swapper.resolution, swapper.resolution, 3), np.uint8)
    t0 = time.perf_counter()
    swapper.swap(faces, direction="a-to-b")
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(int(os.environ.get("REPEATS", 5))):
        t = time.perf_counter()
        swapper.swap(faces, direction="a-to-b")
        times.append(time.perf_counter() - t)
    med = float(np.median(times))
    return {"kind": "swap only (no dlib here)", "preset": preset, "batch": batch, "compile_s": round(compile_s, 2),
            "faces_per_s": round(batch / med, 1), "batch_ms": round(1e3 * med, 2)}


def report(out: Path) -> str:
    """The rows gathered in OUT as one markdown table: measured beside planned."""
    from core.train.plan import _size

    lines = ["| preset | batch (why) | dtype | step ms | images/s | MFU | compile s | plan total | "
             "plan temporaries | measured peak |", "| " + " | ".join(["---"] * 10) + " |"]
    for path in sorted(out.glob("train_*.json")):
        r = json.loads(path.read_text())
        peak = _size(r["measured_peak_bytes"]) if r.get("measured_peak_bytes") else "—"
        mfu = f"{r['mfu']:.1%}" if r.get("mfu") else "—"
        lines.append(f"| {r['preset']} | {r['batch']} ({r['batch_choice']}) | {r['dtype']} | {r['step_ms']} "
                     f"| {r['images_per_s']:,.0f} | {mfu} | {r['compile_s']} | {_size(r['plan']['total_bytes'])} "
                     f"| {_size(r['plan']['temp_bytes'])} | {peak} |")
    for path in sorted(out.glob("convert_*.json")):
        lines.append("\nconversion: " + path.read_text().strip())
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from core.jaxmodels import xla_cpu

    xla_cpu.configure()
    what, args = argv[0], argv[1:]
    if what == "report":
        print(report(Path(args[0])))
        return 0
    preset, out = args[0], Path(args[1])
    out.mkdir(parents=True, exist_ok=True)
    row = {"train": train, "convert": convert}[what](preset, out)
    (out / f"{what}_{preset}.json").write_text(json.dumps(row, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
