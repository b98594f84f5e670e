"""A preset's real training step timed in variants, alternating in one process, so a loaded machine
slows every variant alike: the cost of an option in step time (docs/quality.md's levers).

    python benchmarks/step_time_ab.py lite arch=liae ema_decay=0.998 loss.dssim=0.5,loss.mask_weighted=true

Each argument after the preset is one variant: comma-separated changes to the preset's fields
(`loss.X`, `augment.X` for the nested ones; `arch` through `with_arch`, which sizes the model). The
preset itself is always the first variant. Prints medians of `--rounds` × `--steps` steps in ms, as JSON.
"""
import argparse
import dataclasses
import json
import time

from core.jaxmodels import xla_cpu


def _value(text: str):
    return {"true": True, "false": False}.get(text.lower(), json.loads(text) if text[:1].isdigit() else text)


def variant(preset, changes: str):
    from core.jaxmodels.architectures import with_arch

    for change in filter(None, changes.split(",")):
        key, _, text = change.partition("=")
        value = _value(text)
        if key == "arch":
            preset = with_arch(preset, value)
        elif "." in key:
            part, field = key.split(".", 1)
            preset = dataclasses.replace(preset, **{part: dataclasses.replace(getattr(preset, part), **{field: value})})
        else:
            preset = dataclasses.replace(preset, **{key: value})
    return preset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("preset")
    ap.add_argument("variants", nargs="*")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    xla_cpu.configure()
    import jax
    import jax.numpy as jnp
    import numpy as np

    from core.jaxmodels.presets import get_preset
    from core.jaxmodels.step import FaceData, Trainer

    base = get_preset(args.preset)
    r = base.resolution
    rng = np.random.default_rng(0)
    host = FaceData(*(rng.integers(0, 255, (200, r, r, 3), dtype=np.uint8) for _ in range(4)))
    runs = {}
    for name in ["preset", *args.variants]:
        tr = Trainer(base if name == "preset" else variant(base, name), args.batch, dtype=jnp.float32, steps_per_call=1)
        data, st = tr.put_data(host), tr.init_state(0)
        for _ in range(3):
            st, _m = tr.train_steps(st, data)
        jax.block_until_ready(st)
        runs[name] = [tr, data, st]
    times = {k: [] for k in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            tr, data, st = run
            t = time.perf_counter()
            for _ in range(args.steps):
                st, _m = tr.train_steps(st, data)
            jax.block_until_ready(st)
            times[name].append((time.perf_counter() - t) / args.steps * 1e3)
            run[2] = st
    print(json.dumps({"median_ms": {k: round(float(np.median(v)), 1) for k, v in times.items()}, "all_ms": times}))


if __name__ == "__main__":
    main()
