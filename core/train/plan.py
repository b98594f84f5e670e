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
    """(trainer, compiled step, abstract state, abstract face data) for `faces` faces per side.
    Compiles through the on-disk cache the training job uses, so planning a configuration again
    (a second `facepair plan`, `--batch auto` at each start) skips XLA's compile."""
    import jax
    import jax.numpy as jnp

    from core.jaxmodels.step import FaceData, Trainer
    from core.train import devices

    devices.enable_compile_cache()

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
    params = _tree_bytes(state.params)
    # Beside Adam's moments: the EMA and the discriminators (their weights and moments), when kept.
    opt = sum(_tree_bytes(t) for t in (state.opt_state, state.ema, state.disc, state.disc_opt, state.code_disc,
                                       state.code_disc_opt))
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


# ---- the largest batch that fits: `--batch auto` ------------------------------------------------

AUTO_CAP = 1024  # the largest batch per device `--batch auto` tries
REF_FACES = 8  # faces per side the search compiles with; the real face set's bytes are added exactly
_TOTALS: dict = {}  # (preset, batch, dtype, devices) -> the compiled step's totals: one compile each


def _preset(preset):
    from core.jaxmodels.presets import Preset, get_preset

    return preset if isinstance(preset, Preset) else get_preset(preset)


def _step_key(preset, batch: int, dtype: str) -> str:
    import hashlib
    import json

    import jax

    what = json.dumps({"preset": preset.to_json(), "batch": int(batch), "dtype": dtype, "jax": jax.__version__,
                       "devices": [d.device_kind for d in jax.devices()]}, sort_keys=True, default=str)
    return hashlib.sha1(what.encode()).hexdigest()[:20]


def _read_cache(path) -> dict:
    import json

    try:
        return json.loads(open(path).read()) if path else {}
    except (OSError, ValueError):
        return {}


def step_totals(preset, batch: int, dtype: str, cache_path=None) -> dict:
    """The compiled step's bytes at REF_FACES faces per side, compiled once per process and, with
    `cache_path` (a JSON file), once per machine: a resumed `--batch auto` run compiles nothing new."""
    from core.system.atomic import atomic_write_json

    preset = _preset(preset)
    key = _step_key(preset, batch, dtype)
    if key not in _TOTALS:
        stored = _read_cache(cache_path).get(key)
        if stored is None:
            row = plan(preset, batch, faces=REF_FACES, dtype=dtype)
            stored = {k: row[k] for k in ("params_bytes", "optimizer_bytes", "faces_bytes", "temp_bytes",
                                          "total_bytes", "flops_per_step")}
            if cache_path:
                atomic_write_json(cache_path, {**_read_cache(cache_path), key: stored})
        _TOTALS[key] = stored
    return dict(_TOTALS[key])


def with_faces(totals: dict, faces: int) -> dict:
    """The totals for `faces` faces per side: a face's bytes are a fixed count (the step's
    temporaries do not depend on the face set's size; test_plan checks it)."""
    per_face = totals["faces_bytes"] / REF_FACES
    out = dict(totals, faces=int(faces), faces_bytes=int(per_face * faces))
    out["total_bytes"] = int(totals["total_bytes"] - totals["faces_bytes"] + out["faces_bytes"])
    return out


def search_batch(total_at, budget: int, start: int, unit: int = 1, cap: int = AUTO_CAP) -> tuple[int | None, dict]:
    """The largest batch `unit * 2**k` (at most `cap * unit`) whose `total_at(batch)` (a plan: dict with
    total_bytes, params_bytes, optimizer_bytes, faces_bytes) is ≤ `budget`, and every plan it made.

    From `start`, each next probe is where a line through the batch-independent bytes (weights,
    optimizer, faces) and the nearest plan crosses the budget, so a search takes about three plans;
    once a fitting and a failing batch are known it bisects between them."""
    cands = [unit * 2**k for k in range(cap.bit_length()) if 2**k <= cap]
    tried: dict[int, dict] = {}

    def fits(i: int) -> bool:
        if cands[i] not in tried:
            tried[cands[i]] = total_at(cands[i])
        return tried[cands[i]]["total_bytes"] <= budget

    i = max(j for j, b in enumerate(cands) if b <= max(start, unit))
    lo, hi = (i, len(cands)) if fits(i) else (-1, i)
    while hi - lo > 1:
        if lo >= 0 and hi < len(cands):
            j = (lo + hi) // 2
        else:
            j = min(max(_crossing(cands, tried[cands[lo if lo >= 0 else hi]], cands[lo if lo >= 0 else hi], budget),
                        lo + 1), hi - 1)
        lo, hi = (j, hi) if fits(j) else (lo, j)
    return (cands[lo] if lo >= 0 else None), tried


def _crossing(cands: list[int], row: dict, batch: int, budget: int) -> int:
    """Index of the largest candidate the line through (0, fixed bytes) and (batch, total) keeps ≤ budget."""
    fixed = row["params_bytes"] + row["optimizer_bytes"] + row["faces_bytes"]
    slope = max(1.0, (row["total_bytes"] - fixed) / batch)
    best = (budget - fixed) / slope
    return max([j for j, b in enumerate(cands) if b <= best] or [-1])


def auto_batch(preset, faces: int, memory: int | None, dtype: str = "bfloat16", devices: int = 1,
               streamed: bool = False, margin: float = MARGIN, cache_path=None, plan_at=None) -> dict:
    """`--batch auto`: the largest power-of-two batch per device whose plan fits `memory` (bytes of
    one device) less `margin`; without a memory size (a CPU) the preset's default batch. Returns
    batch (per side, all devices), per_device, why (one line for the job's events), and the plans.
    Streamed from the host, the device holds one call's batches, not the face set. `plan_at(batch)`
    replaces the compiled plan (tests)."""
    preset = _preset(preset)
    if memory is None:
        return {"batch": preset.batch, "per_device": preset.batch // max(1, devices), "auto": True, "plans": {},
                "why": f"batch auto: {preset.batch}, the preset's default (this device reports no memory size)"}
    budget = int((1 - margin) * memory)

    def total_at(batch: int) -> dict:
        totals = plan_at(batch) if plan_at else step_totals(preset, batch, dtype, cache_path)
        return with_faces(totals, preset.steps_per_call * batch if streamed else faces)

    best, tried = search_batch(total_at, budget, start=preset.batch, unit=devices)
    head = f"{int(margin * 100)} % margin"
    if best is None:
        from core.errors import FacepairError

        need = tried[devices]["total_bytes"]
        raise FacepairError(f"batch auto: not even batch {devices} fits ({_size(need)} planned, "
                            f"{_size(memory)} on the device less a {head}): use a smaller preset, "
                            "or --stream-from-host when the face set is large")
    over = tried.get(2 * best)
    per = f", {best // devices} per device" if devices > 1 else ""
    why = (f"batch auto: {best}{per} (plan {_size(tried[best]['total_bytes'])} of {_size(memory)} with a {head}"
           + (f"; {2 * best} would need {_size(over['total_bytes'])})" if over else "; the largest auto tries)"))
    return {"batch": best, "per_device": best // devices, "auto": True, "why": why, "memory_bytes": int(memory),
            "budget_bytes": budget, "margin": margin,
            "plans": {b: r["total_bytes"] for b, r in sorted(tried.items())}}


# ---- faces on the device or streamed from the host ----------------------------------------------

def choose_stream(preset, faces: int, memory: int | None, batch: int, dtype: str = "bfloat16",
                  margin: float = MARGIN, cache_path=None, plan_at=None) -> dict:
    """Whether the face set stays in host memory (each dispatch gets its steps' faces) because it
    does not fit the device: streamed when the plan at `batch` with `faces` faces per side on the
    device is over `memory` less `margin` and the streamed plan (one call's batches on the device)
    is within it. When neither fits, the batch is the problem, not the faces: they stay on the
    device (`--batch auto` then finds a batch that fits). No memory size (a CPU): never streamed.
    Returns streamed, why (a line for the job's events, or None), and both plans' bytes."""
    preset = _preset(preset)
    if memory is None:
        return {"streamed": False, "why": None}
    budget = int((1 - margin) * memory)
    totals = plan_at(batch) if plan_at else step_totals(preset, batch, dtype, cache_path)
    on_device = with_faces(totals, faces)["total_bytes"]
    streamed_bytes = with_faces(totals, preset.steps_per_call * batch)["total_bytes"]
    streamed = on_device > budget >= streamed_bytes
    why = None
    if streamed:
        why = (f"faces streamed from the host: with the face set ({faces} per side) on the device the plan at "
               f"batch {batch} needs {_size(on_device)}, over {_size(memory)} less a {int(margin * 100)} % margin; "
               f"streamed it needs {_size(streamed_bytes)}")
    return {"streamed": streamed, "why": why, "device_bytes": on_device, "streamed_bytes": streamed_bytes,
            "budget_bytes": budget}


# ---- the table of what fits: `facepair plan --table` ---------------------------------------------

TABLE_BATCHES = (8, 16, 32, 64, 128, 256)
TABLE_MEMORIES_GB = (24, 40, 80, 141)


def table_rows(preset, faces: int, dtype: str = "bfloat16", batches=TABLE_BATCHES,
               memories_gb=TABLE_MEMORIES_GB, plan_at=None, progress=None) -> list[dict]:
    """Plans of one preset at `batches`, stopping after the first that does not fit the largest memory
    (a larger batch cannot fit any: the totals grow with the batch)."""
    largest = max(memories_gb) * 2**30
    rows = []
    for batch in batches:
        if progress:
            progress(f"compiling {_preset(preset).name} at batch {batch}…")
        row = (plan_at or plan)(preset, batch, faces=faces, dtype=dtype, memory=largest)
        rows.append(row)
        if not row["fits"]:
            break
    return rows


def fit_markdown(rows: list[dict], memories_gb=TABLE_MEMORIES_GB, margin: float = MARGIN) -> str:
    """Per preset and memory size, the largest planned batch whose total is ≤ (1 − margin) × memory."""
    lines = ["| preset | " + " | ".join(f"{m} GB" for m in memories_gb) + " |",
             "| " + " | ".join(["---"] * (1 + len(memories_gb))) + " |"]
    for name in dict.fromkeys(r["preset"] for r in rows):
        mine = [r for r in rows if r["preset"] == name]
        cells = []
        for m in memories_gb:
            ok = [r for r in mine if r["total_bytes"] <= (1 - margin) * m * 2**30]
            best = max(ok, key=lambda r: r["batch"]) if ok else None
            top = best is not None and best is mine[-1]  # no larger batch planned: it may fit too
            cells.append("none" if best is None else f"{best['batch']}{'+' if top else ''} ({_size(best['total_bytes'])})")
        lines.append(f"| {name} ({mine[0]['resolution']} px, {mine[0]['dtype']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)
