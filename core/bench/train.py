"""`facepair bench train`: training throughput of a preset, as `facepair train` runs it.

What is timed is the real training step (core.jaxmodels.step.Trainer.train_steps): sampling from
faces kept on the device, the on-device augmentation (random affine, flip, colour, random warp),
forward and backward through the shared encoder and both decoders, the loss, global-norm clipping,
the guarded Adam update, `steps_per_call` steps per dispatch. The faces are synthetic
(`step.synthetic_faces`): the speed does not depend on what the faces show.

Reported per preset (`run()` returns `{"train": [row, ...]}`):
- `images_per_s`: batch x 2 sides x steps / seconds (faceswap's EGs/sec), the median of
  `repeats` timed runs of `steps` steps (dispatched `steps_per_call` at a time, the trainer's
  default for the device: 1 on a CPU); `step_ms`: milliseconds per step (same median);
- `compile_s`: the first run minus a steady one (tracing + XLA compilation);
- `flops_per_step`: XLA's cost analysis of one step (one iteration of the scan, augmentation
  included); `flops_per_s` = flops_per_step / step time; `peak_flops_per_s` and `mfu` where the
  device's peak is known (bf16 dense tensor-core peaks of data-centre GPUs; none for CPUs);
- `device`, `devices`, `dtype` (compute dtype), `conv` (which convolution the model uses:
  `fastconv` on XLA:CPU, `xla` elsewhere; FACEPAIR_CONV=xla|fast overrides; on a CPU also whose
  kernels: XLA's own or YNNPACK's, see core/jaxmodels/xla_cpu.py), `params`.
With `torch=True`, the PyTorch eager reference of the same architecture (benchmarks/
torch_reference.py, the `bench` extra) runs in the same process, in both layouts (NCHW and
channels_last), with and without the same augmentation (benchmarks/torch_augment.py), `steps`
steps of each right after every JAX dispatch so that a busy machine slows all alike. The row gets
`torch_images_per_s` and `torch_step_ms` of the faster layout (`torch_layout`) of the augmented
reference — the same work as the JAX step — and `vs_torch` = JAX images/s / that (above 1: JAX is
faster); `torch_plain_images_per_s` and `vs_torch_plain` compare with the model-only step
(no sampling, no augmentation), which favours PyTorch.

Imports only jax/flax/optax/numpy (never dlib or Textual), so it runs on a bare GPU box.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

# Dense bf16 peaks (FLOP/s) by a substring of jax's device_kind; the first match wins.
PEAK_BF16 = (
    ("H200", 989.4e12),
    ("H100 PCIe", 756.0e12),
    ("H100", 989.4e12),
    ("A100", 312.0e12),
    ("L4", 121.0e12),
)

ROOT = Path(__file__).resolve().parents[2]


def peak_flops(device_kind: str, platform: str) -> float | None:
    """The device's dense bf16 peak where known; None for CPUs and unknown devices."""
    if platform == "cpu":
        return None
    for key, peak in PEAK_BF16:
        if key.lower() in device_kind.lower():
            return peak
    return None


def _conv_impl(platform: str) -> str:
    """Which convolution the model uses; on a CPU also whose kernels run it (core/jaxmodels/xla_cpu)."""
    from core.jaxmodels import fastconv, xla_cpu

    name = "fastconv" if fastconv.enabled() else "xla"
    if platform == "cpu":
        name += ", XLA kernels" if xla_cpu.eigen_convs() else ", YNNPACK kernels"
    return name


def bench_preset(preset: str, batch: int = 16, steps: int = 10, repeats: int = 3, seed: int = 0,
                 faces: int = 64, progress=None, others: dict | None = None) -> dict:
    """Time `repeats` dispatches of `steps` training steps each (after one compiling dispatch).

    `others`: {name: time_steps(n) -> seconds} timed for `steps` steps right after each JAX
    dispatch (the PyTorch reference), so a busy machine slows both alike; their median seconds
    per group come back under row["others"][name].
    """
    import jax

    from core.jaxmodels.presets import get_preset
    from core.jaxmodels.step import Trainer, synthetic_faces

    say = progress or (lambda msg: None)
    steps = max(1, int(steps))
    # The step a new model runs (a preset's late discriminator joins later: bench it with gan_from=0),
    # steps per dispatch as `facepair train` uses them here.
    trainer = Trainer(get_preset(preset).program_at(0), batch)
    spc = trainer.steps_per_call
    calls = [spc] * (steps // spc) + ([steps % spc] if steps % spc else [])
    state = trainer.init_state(seed)
    data = trainer.put_data(synthetic_faces(trainer.preset, max(faces, batch), seed=seed))

    say(f"{preset}: lowering for the cost analysis")
    flops = _flops_per_step(trainer, state, data)

    def timed():
        nonlocal state
        t = time.perf_counter()
        for n in calls:
            state, m = trainer.train_steps(state, data, n)
        jax.block_until_ready((state, m))
        return time.perf_counter() - t, m

    say(f"{preset}: compiling (batch {batch} per side, {spc} step(s) per dispatch)")
    first, _ = timed()

    times, other_times, metrics = _repeat(timed, preset, steps, repeats, others, say)
    return _row(preset, batch, steps, trainer, state, flops, first, times, other_times, metrics)


def _row(preset: str, batch: int, steps: int, trainer, state, flops: float | None, first: float, times: list[float],
         other_times: dict, metrics: dict) -> dict:
    """The benchmark's row for one preset: throughput, compile time, the device and its use."""
    import numpy as np

    from core.jaxmodels.models import count_params

    spc = trainer.steps_per_call
    dev = trainer.mesh.devices.flat[0]
    kind = getattr(dev, "device_kind", "") or dev.platform
    med = float(np.median(times))
    step_s = med / steps
    peak = peak_flops(kind, dev.platform)
    fps = flops / step_s if flops else None
    loss = _last_loss(metrics)
    return {
        "preset": preset,
        "batch": batch,
        "steps": steps,
        "steps_per_call": spc,
        "repeats": len(times),
        "images_per_s": round(batch * 2 * steps / med, 3),
        "step_ms": round(1e3 * step_s, 2),
        "step_ms_all": [round(1e3 * x / steps, 2) for x in times],
        "compile_s": round(max(0.0, first - med), 2),
        "device": f"{dev.platform}:{kind}" if kind != dev.platform else dev.platform,
        "devices": int(trainer.mesh.size),
        "dtype": np.dtype(trainer.dtype).name,
        "conv": _conv_impl(dev.platform),
        "params": count_params(state.params),
        "flops_per_step": flops,
        "flops_per_s": fps,
        "peak_flops_per_s": peak,
        "mfu": (fps / (peak * trainer.mesh.size)) if (fps and peak) else None,
        "loss": round(loss, 5) if math.isfinite(loss) else None,
        "others": {k: float(np.median(v)) for k, v in other_times.items()},
        "others_all": {k: [round(1e3 * x / steps, 2) for x in v] for k, v in other_times.items()},
    }


def _repeat(timed, preset: str, steps: int, repeats: int, others: dict | None, say):
    """(seconds of each timed group, {other: its seconds per group}, the last group's metrics):
    `repeats` groups, each `others` timed right after the JAX one."""
    times, other_times = [], {k: [] for k in (others or {})}
    metrics = None
    for i in range(max(1, int(repeats))):
        say(f"{preset}: timing {steps} steps, {i + 1}/{repeats}")
        dt, metrics = timed()
        times.append(dt)
        for name, time_steps in (others or {}).items():
            say(f"{preset}: timing {name}, {i + 1}/{repeats}")
            other_times[name].append(time_steps(steps))
    return times, other_times, metrics


def _last_loss(metrics: dict) -> float:
    """loss_a + loss_b of the last step a dispatch really ran."""
    import numpy as np

    done = np.asarray(metrics["done"]) if "done" in metrics else np.ones(np.shape(metrics["loss_a"]), bool)
    last = int(np.flatnonzero(np.atleast_1d(done))[-1])
    return float(np.atleast_1d(np.asarray(metrics["loss_a"]))[last] + np.atleast_1d(np.asarray(metrics["loss_b"]))[last])


def _flops_per_step(trainer, state, data) -> float | None:
    """XLA's cost analysis of one training step (a scan body is counted once: one step)."""
    import jax

    try:
        lowered = jax.jit(lambda s, d: trainer.train_steps(s, d, 1)).lower(state, data)
        cost = lowered.cost_analysis()
    except Exception:  # noqa: BLE001 - a backend without cost analysis still gets its timings
        return None
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else None
    flops = (cost or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


def torch_references(preset: str, batch: int, progress=None) -> dict:
    """The PyTorch eager reference (benchmarks/torch_reference.py) for a preset, in both layouts,
    warmed up: {"torch NCHW": Reference, "torch channels_last": Reference}."""
    from core.errors import FacepairError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise FacepairError("--torch needs PyTorch: pip install -e '.[bench]' (torch==2.13.0, CPU build)") from None
    bench_dir = ROOT / "benchmarks"
    if not (bench_dir / "torch_reference.py").is_file():
        raise FacepairError(f"--torch needs {bench_dir / 'torch_reference.py'} (it is in the source checkout)")
    if str(bench_dir) not in sys.path:
        sys.path.insert(0, str(bench_dir))
    import torch_reference

    refs = {}
    for kind in ("torch", "torch+aug"):
        for layout in ("NCHW", "channels_last"):
            if progress:
                progress(f"{preset}: PyTorch eager reference ({kind}, {layout}), warm-up")
            ref = torch_reference.Reference(preset, batch, channels_last=layout == "channels_last",
                                            augment=kind == "torch+aug")
            ref.time_steps(2)
            refs[f"{kind} {layout}"] = ref
    return refs


def _best_layout(others: dict, kind: str, batch: int, steps: int) -> tuple[str, dict]:
    """(faster layout, images/s by layout) of one kind of reference ("torch" or "torch+aug")."""
    per_layout = {k.split()[1]: batch * 2 * steps / s for k, s in others.items() if k.split()[0] == kind}
    return max(per_layout, key=per_layout.get), per_layout


def run(presets=("lite",), batch: int = 16, steps: int = 10, repeats: int = 3, torch: bool = False,
        seed: int = 0, progress=None, **_ignored) -> dict:
    """Benchmark each preset; returns {"train": [row, ...]} (see the module notes for the keys)."""
    if isinstance(presets, str):
        presets = [presets]
    rows = []
    for p in presets:
        refs = torch_references(p, batch, progress) if torch else {}
        row = bench_preset(p, batch=batch, steps=steps, repeats=repeats, seed=seed, progress=progress,
                           others={k: r.time_steps for k, r in refs.items()})
        others, others_all = row.pop("others"), row.pop("others_all")
        if refs:
            best, per_layout = _best_layout(others, "torch+aug", batch, steps)
            plain_best, plain = _best_layout(others, "torch", batch, steps)
            first = next(iter(refs.values()))
            row["torch_images_per_s"] = round(per_layout[best], 3)
            row["torch_step_ms"] = round(1e3 * others[f"torch+aug {best}"] / steps, 2)
            row["torch_layout"] = best
            row["torch_images_per_s_by_layout"] = {k: round(v, 3) for k, v in per_layout.items()}
            row["torch_step_ms_all"] = others_all
            row["torch_version"] = first.info()["torch"]
            row["torch_threads"] = first.info()["threads"]
            row["vs_torch"] = round(row["images_per_s"] / per_layout[best], 3)
            row["torch_plain_images_per_s"] = round(plain[plain_best], 3)
            row["torch_plain_layout"] = plain_best
            row["vs_torch_plain"] = round(row["images_per_s"] / plain[plain_best], 3)
        rows.append(row)
    return {"train": rows}


def main(argv=None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(description="Training throughput (see `facepair bench train --help`).")
    ap.add_argument("--preset", nargs="+", default=["lite"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--torch", action="store_true")
    a = ap.parse_args(argv)
    out = run(a.preset, a.batch, a.steps, a.repeats, a.torch,
              progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
