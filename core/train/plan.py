"""Memory and speed plans for a preset: the real training step compiled, not run (`facepair plan`).

XLA reports a compiled step's memory (arguments, outputs, temporaries; donated state aliased) and
its FLOPs on any backend, so a plan made on a CPU says what a step needs before a GPU is rented.
The step is `Trainer`'s own, as `facepair train` builds it, in the compute precision of the target
(bf16 with fp32 weights for a GPU). Compiled by XLA:CPU, the temporaries are that backend's
schedule; XLA:GPU fuses differently, so the activation figure is an estimate of the GPU's (the
weights, optimizer state and faces are exact byte counts).

Step time and images/s follow from the FLOPs and a device's dense bf16 peak at a stated
utilisation; the peaks are the vendors' datasheet figures (`PEAKS`).
"""

from __future__ import annotations

import math
import re

import numpy as np

# Dense (no sparsity) bf16 tensor-core peaks, FLOP/s: NVIDIA's H100 and H200 datasheets (SXM).
PEAKS = {"H100": 989e12, "H200": 989e12}
PEAK_SOURCE = "NVIDIA H100/H200 SXM datasheets: 989 TFLOP/s dense BF16"
UTILISATION = 0.4  # of the peak a convolutional step like this one reaches (an assumption, stated)
MARGIN = 0.1  # share of a device's memory a plan keeps free (the runtime, fragmentation)
MAP_CHANNELS = 3  # the weight maps beside each face (mask, eyes, mouth), uint8


def parse_memory(text: str) -> int:
    """Bytes from '80GB', '80 GiB', '24g', '141GB' (GB and GiB both read as 2**30, as cards are sold)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([gGmMtT])(?:i?[bB])?\s*", str(text))
    if not m:
        raise ValueError(f"cannot read the memory size {text!r}: use e.g. 80GB or 24GiB")
    scale = {"m": 2**20, "g": 2**30, "t": 2**40}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def _tree_bytes(tree) -> int:
    import jax

    return int(sum(np.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))


def compile_step(preset, batch: int, faces: int, dtype: str):
    """(trainer, compiled step, abstract state, abstract face data) for `faces` faces per side."""
    import jax
    import jax.numpy as jnp

    from core.jaxmodels.step import FaceData, Trainer

    trainer = Trainer(preset, batch, dtype=jnp.bfloat16 if dtype == "bfloat16" else jnp.float32, steps_per_call=1)
    state = trainer.abstract_state()
    r = trainer.preset.resolution
    shape = jax.ShapeDtypeStruct((faces, r, r, 3), jnp.uint8)
    data = FaceData(shape, jax.ShapeDtypeStruct((faces, r, r, MAP_CHANNELS), jnp.uint8), shape,
                    jax.ShapeDtypeStruct((faces, r, r, MAP_CHANNELS), jnp.uint8))
    compiled = trainer._train.lower(state, data, jnp.asarray(1, jnp.int32)).compile()
    return trainer, compiled, state, data


def plan(preset, batch: int, faces: int = 1000, dtype: str = "bfloat16", memory: int | None = None,
         utilisation: float = UTILISATION) -> dict:
    """The plan of one preset at one batch (faces per side per step) as plain data."""
    trainer, compiled, state, data = compile_step(preset, batch, faces, dtype)
    mem = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    params, opt = _tree_bytes(state.params), _tree_bytes(state.opt_state)
    total = int(mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
                + mem.temp_size_in_bytes)
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    row = {"preset": trainer.preset.name, "resolution": trainer.preset.resolution, "batch": int(batch),
           "faces": int(faces), "dtype": dtype, "params_bytes": params, "optimizer_bytes": opt,
           "faces_bytes": _tree_bytes(data), "temp_bytes": int(mem.temp_size_in_bytes), "total_bytes": total,
           "flops_per_step": flops, "utilisation": utilisation, "devices": {}}
    for name, peak in PEAKS.items():
        step_s = flops / (peak * utilisation) if flops else math.nan
        row["devices"][name] = {"step_ms": step_s * 1e3, "images_per_s": 2 * batch / step_s if flops else math.nan}
    if memory is not None:
        row["memory_bytes"] = int(memory)
        row["fits"] = total <= (1 - MARGIN) * memory
    return row


def _size(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def markdown(rows: list[dict]) -> str:
    """The plans as a markdown table (one row per preset and batch). H100 and H200 share one bf16
    peak, so one column gives both; the figure is FLOP-bound (small models are launch-bound)."""
    head = ("| preset | batch | weights | optimizer | faces | temporaries | total | fits | GFLOP/step "
            f"| H100/H200 at {rows[0]['utilisation'] if rows else UTILISATION:.0%}: ms/step · img/s |")
    lines = [head, "| " + " | ".join(["---"] * 10) + " |"]
    for r in rows:
        fits = "—" if "fits" not in r else ("yes" if r["fits"] else "no") + f" ({_size(r['memory_bytes'])})"
        d = r["devices"]["H100"]
        lines.append(f"| {r['preset']} ({r['resolution']} px, {r['dtype']}) | {r['batch']} | {_size(r['params_bytes'])} "
                     f"| {_size(r['optimizer_bytes'])} | {_size(r['faces_bytes'])} ({r['faces']}/side) "
                     f"| {_size(r['temp_bytes'])} | {_size(r['total_bytes'])} | {fits} | {r['flops_per_step'] / 1e9:,.1f} "
                     f"| {d['step_ms']:.3g} · {d['images_per_s']:,.0f} |")
    return "\n".join(lines)
