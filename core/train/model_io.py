"""The trained model on disk: orbax checkpoints under `model/checkpoints/`, and `load_swapper`.

A checkpoint step holds two items: `state` — a flat dict of numpy arrays named by their path in
the training state (`params.encoder.convs.0.kernel`, `opt_state.1.mu`, `step`, …) so any reader
can pick what it needs — and `meta` — JSON with the preset's full config, the resolution, the step
and the facepair version. Flat names keep checkpoints independent of Python container types.
Only the primary process of a multi-host run reads or writes them.

`load_swapper(project)` is what conversion, evaluation and the TUI use: the newest checkpoint's
weights, ready to swap uint8 faces in batches — the moving average of the weights (`ema.*`) when
the model keeps one, unless the raw weights are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import FacepairError
from core.system.atomic import read_json

CHECKPOINTS = "checkpoints"
DAMAGED = "checkpoints-damaged"  # beside checkpoints/: where an unreadable step is moved (orbax never looks)
STATUS = "status.json"
CONFIG = "config.json"
HOLDOUT = "holdout.json"


class NoModel(FacepairError):
    """The project has no trained model yet."""


class DamagedModel(FacepairError):
    """Every checkpoint of the project's model is unreadable."""


def checkpoint_dir(project) -> Path:
    return project.model_dir / CHECKPOINTS


def checkpoint_manager(directory: Path, keep: int = 3, read_only: bool = False):
    """An orbax CheckpointManager for this process alone (atomic saves, the last `keep` kept)."""
    import jax
    import orbax.checkpoint as ocp

    mp = ocp.options.MultiprocessingOptions()
    create = not read_only
    if jax.process_count() > 1:  # the primary alone reads and writes: no cross-host barriers
        mp = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(),
                                                active_processes={jax.process_index()})
        if create:
            Path(directory).mkdir(parents=True, exist_ok=True)
        create = False
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=create, read_only=read_only, enable_async_checkpointing=False,
        cleanup_tmp_directories=not read_only,  # a save cut short by a second signal leaves a tmp dir
        multiprocessing_options=mp,
    )
    handlers = {"state": ocp.PyTreeCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(Path(directory).absolute(), options=options, item_handlers=handlers)


def _name(path) -> str:
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return ".".join(parts)


def flatten(tree) -> dict[str, object]:
    """{dotted path: leaf} for a pytree (NamedTuples by field name, dicts by key, lists by index)."""
    import jax

    return {_name(p): v for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def unflatten(template, flat: dict[str, object], prefix: str = ""):
    """Rebuild `template`'s structure from a flat dict (keys as `flatten` made them, under prefix)."""
    import jax

    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    missing = [prefix + _name(p) for p, _ in paths if prefix + _name(p) not in flat]
    if missing:
        raise FacepairError(f"the checkpoint does not match this model: {len(missing)} tensors missing "
                            f"(e.g. {missing[0]}); it was written by another version of the model")
    return jax.tree_util.tree_unflatten(treedef, [flat[prefix + _name(p)] for p, _ in paths])


def upgrade_flat_state(flat: dict[str, np.ndarray], template) -> dict[str, np.ndarray]:
    """A flat checkpoint state in today's layout. Checkpoints written before Adam worked tensor by
    tensor hold each moment as one vector (`opt_state.1.mu`: every parameter, raveled in the
    params' leaf order); they are split into `opt_state.1.mu.<param path>` so training resumes
    with its optimizer state instead of starting Adam over. A model that keeps no moving average of
    its weights yet (`ema.*`: an older checkpoint, or one trained without) starts it from its
    weights when the template wants one. Anything else passes through."""
    params = flatten(template.params)
    if not params:
        return flat
    first = next(iter(params))
    out = dict(flat)
    if flatten(getattr(template, "ema", {})) and f"ema.{first}" not in out:
        out.update({f"ema.{name}": out[f"params.{name}"] for name in params if f"params.{name}" in out})
    for moment in ("mu", "nu"):
        key = f"opt_state.1.{moment}"
        vec = out.get(key)
        if vec is None or f"{key}.{first}" in out or np.ndim(vec) != 1:
            continue
        sizes = [int(np.prod(leaf.shape)) for leaf in params.values()]
        if sum(sizes) != vec.size:
            raise FacepairError(f"the checkpoint does not match this model: its optimizer state holds "
                                f"{vec.size} values for {sum(sizes)} parameters")
        del out[key]
        offset = 0
        for (name, leaf), n in zip(params.items(), sizes, strict=True):
            out[f"{key}.{name}"] = np.asarray(vec[offset:offset + n]).reshape(leaf.shape)
            offset += n
    return out


def _crc(v: np.ndarray) -> int:
    import zlib

    return zlib.crc32(np.ascontiguousarray(v).view(np.uint8).reshape(-1))


def checksums(flat_state: dict[str, object]) -> dict[str, list]:
    """{name: [crc32 of its bytes, dtype]} for the array tensors of a flat state: stored in `meta` so
    a reader can tell a corrupt data file (which orbax's compression does not always notice)."""
    out = {}
    for k, v in flat_state.items():
        if isinstance(v, np.ndarray) and v.size:
            out[k] = [_crc(v), str(v.dtype)]
    return out


def save_checkpoint(manager, step: int, flat_state: dict[str, np.ndarray], meta: dict) -> None:
    import orbax.checkpoint as ocp

    meta = {**meta, "checksums": checksums(flat_state)}
    manager.save(int(step), args=ocp.args.Composite(state=ocp.args.PyTreeSave(flat_state),
                                                    meta=ocp.args.JsonSave(meta)), force=True)
    manager.wait_until_finished()


def read_meta(manager, step: int) -> dict:
    import orbax.checkpoint as ocp

    return dict(manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])


def read_state(manager, step: int, only: str | tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The flat state of a step as numpy arrays (only keys starting with `only`, or one of them, when given)."""
    import orbax.checkpoint as ocp

    meta = manager.item_metadata(step)["state"]
    if meta is None:
        raise FacepairError(f"the checkpoint at step {step} has no readable state metadata")
    keys = [k for k in meta.keys() if only is None or k.startswith(only)]
    restore_args = {k: ocp.RestoreArgs(restore_type=np.ndarray) for k in meta.keys()}
    item = {k: np.zeros((), np.float32) for k in meta.keys()}
    if only is not None:
        # Restore a subset: orbax skips what the target leaves out when partial restore is on.
        item = {k: item[k] for k in keys}
        restore_args = {k: restore_args[k] for k in keys}
        args = ocp.args.PyTreeRestore(item=item, restore_args=restore_args, partial_restore=True)
    else:
        args = ocp.args.PyTreeRestore(restore_args=restore_args)
    out = manager.restore(step, args=ocp.args.Composite(state=args))["state"]
    return {k: np.asarray(v) for k, v in out.items()}


def checkpoint_steps(directory: Path) -> list[int]:
    """The finished steps in a checkpoints folder, newest first (orbax's tmp folders left out)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted((int(p.name) for p in d.iterdir() if p.name.isdigit() and p.is_dir()), reverse=True)


def move_aside(project, step: int) -> Path:
    """Move the checkpoint folder of `step` to `model/checkpoints-damaged/STEP` (never deleted: the
    user may still want it). Returns where it went. FileNotFoundError when it is already gone."""
    src = checkpoint_dir(project) / str(int(step))
    dest_dir = project.model_dir / DAMAGED
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest, n = dest_dir / str(int(step)), 1
    while dest.exists():
        dest, n = dest_dir / f"{int(step)}-{n}", n + 1
    src.rename(dest)
    return dest


def _verify(flat: dict[str, np.ndarray], meta: dict) -> None:
    if not flat:
        raise ValueError("it holds no tensors")
    if not isinstance(meta, dict) or "preset_config" not in meta:
        raise ValueError("its meta item has no preset_config")
    sums = meta.get("checksums") or {}  # checkpoints written before checksums have none
    for k, v in flat.items():
        want = sums.get(k)
        if want is not None and str(v.dtype) == want[1] and _crc(v) != int(want[0]):
            raise ValueError(f"tensor {k} does not match its checksum (a corrupt data file)")
        if np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all():
            raise ValueError(f"tensor {k} holds non-finite values")


_NEEDED = ("_CHECKPOINT_METADATA", "state/_METADATA", "state/manifest.ocdbt", "meta/metadata")


def _damage(step_dir: Path, error: Exception) -> str:
    """What is wrong with a checkpoint folder, in words: a missing file by name, else the error."""
    missing = [f for f in _NEEDED if not (step_dir / f).is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    text = (str(error).strip().splitlines() or [""])[0][:300]
    return f"unreadable: {text or type(error).__name__}"


def read_newest_intact(project, only: str | tuple[str, ...] | None = None, warn=None,
                       move: bool = True) -> tuple[int, dict, dict] | None:
    """(step, meta, flat state) of the newest checkpoint that reads back whole, or None when there is
    no checkpoint at all. Every tensor read (those starting with `only`, when given) is checked: a
    step whose metadata, meta item or data files cannot be read (a missing `_METADATA`, a truncated
    or corrupt data file) is moved to `model/checkpoints-damaged/`, `warn(text)` is called naming
    it, and the next older step is tried. Raises DamagedModel when every step is damaged. With
    `move` False (a reader while a training job holds the model lock) damaged steps stay put."""
    d = checkpoint_dir(project)
    steps = checkpoint_steps(d)
    if not steps:
        return None
    manager = checkpoint_manager(d, read_only=True)
    damaged: list[tuple[int, str, Path | None]] = []
    try:
        for step in steps:
            try:
                meta = read_meta(manager, step)
                flat = read_state(manager, step, only=only)
                _verify(flat, meta)
            except MemoryError:  # too big for this machine is not damage
                raise
            except Exception as e:  # orbax/tensorstore raise many types for a damaged step
                if not (d / str(step)).is_dir():
                    continue  # removed meanwhile (a training job keeping its last few): not damage
                why = _damage(d / str(step), e)
                where = None
                if move:
                    try:
                        where = move_aside(project, step)
                    except OSError:
                        pass
                damaged.append((step, why, where))
                if warn is not None:
                    moved = (f"moved it to {where}" if where else "could not move it aside" if move else
                             "left it in place while a training job holds the model")
                    warn(f"the checkpoint at step {step} in {d} is damaged ({why}); {moved}")
                continue
            if damaged and warn is not None:
                warn(f"using the newest intact checkpoint, step {step} "
                     f"(instead of damaged step{'s' if len(damaged) > 1 else ''} "
                     f"{', '.join(str(s) for s, _, _ in damaged)})")
            return step, meta, flat
    finally:
        manager.close()
    lines = "; ".join(f"step {s}: {why}" + (f" (moved to {w})" if w else "") for s, why, w in damaged)
    if not damaged:  # every step vanished while we looked
        return None
    raise DamagedModel(
        f"every checkpoint of project {project.name!r} is damaged and none can be loaded ({lines}). "
        f"{'They were moved to ' + str(project.model_dir / DAMAGED) + ' (not deleted). ' if move else ''}"
        f"Train a new model with "
        f"`facepair train {project.name}` (it starts from scratch), or put back a copy of "
        f"{d} from a backup")


def read_status(project) -> dict | None:
    try:
        return read_json(project.model_dir / STATUS)
    except (FileNotFoundError, ValueError):
        return None


def read_holdout(project) -> dict[str, list[str]]:
    try:
        d = read_json(project.model_dir / HOLDOUT)
        return {"a": list(d.get("a", [])), "b": list(d.get("b", []))}
    except (FileNotFoundError, ValueError):
        return {"a": [], "b": []}


# ---- the swapper ------------------------------------------------------------------------------

_SIDES = {"a-to-b": "b", "b-to-a": "a", "a-to-a": "a", "b-to-b": "b"}


@dataclass
class Swapper:
    """A trained model ready to swap faces. `swap(faces (N, R, R, 3) uint8, direction)` encodes with
    the shared encoder and decodes with the target side's decoder: "a-to-b" puts B's face on A's
    faces. Returns (rgb float32 (N, R, R, 3) in [0, 1], mask float32 (N, R, R) or None)."""

    preset: str
    resolution: int
    step: int
    has_mask: bool
    _params: dict
    _fn: object
    batch: int = 64
    coverage: float | None = None  # the model's crop (None: the extracted crops')
    engine: str = "jax"
    weights: str = "raw"  # "ema": the moving average of the weights (core.train.model_io.load_model)

    def swap(self, faces, direction: str = "a-to-b"):
        if direction not in _SIDES:
            raise FacepairError(f"unknown swap direction {direction!r}; use one of {', '.join(_SIDES)}")
        faces = np.asarray(faces)
        r = self.resolution
        if faces.ndim != 4 or faces.shape[1:] != (r, r, 3):
            raise FacepairError(f"the {self.preset} model swaps {r}×{r} RGB faces; got an array of shape "
                                f"{faces.shape} (resize the aligned crops to {r} px)")
        if faces.dtype != np.uint8:
            raise FacepairError(f"faces must be uint8 RGB, not {faces.dtype}")
        side = _SIDES[direction]
        n = len(faces)
        rgbs, masks = [], []
        for i in range(0, n, self.batch):
            chunk = faces[i:i + self.batch]
            m = len(chunk)
            padded = _bucket(m)  # a few fixed batch sizes: a handful of compiles, not one per N
            if padded != m:
                chunk = np.concatenate([chunk, np.zeros((padded - m, r, r, 3), np.uint8)])
            rgb, mask = self._fn(self._params, chunk, side)
            rgbs.append(np.asarray(rgb)[:m])
            if mask is not None:
                masks.append(np.asarray(mask)[:m])
        rgb = np.concatenate(rgbs) if rgbs else np.zeros((0, r, r, 3), np.float32)
        if not self.has_mask:
            return rgb, None
        return rgb, (np.concatenate(masks) if masks else np.zeros((0, r, r), np.float32))


def _bucket(n: int) -> int:
    b = 1
    while b < n:
        b *= 2
    return b


@dataclass
class LoadedModel:
    """The newest intact checkpoint's weights with the model they belong to (graphdef + params)."""

    preset: object  # core.jaxmodels.presets.Preset
    step: int
    graphdef: object
    params: dict
    weights: str = "raw"  # which weights `params` holds: "ema" (their moving average) or "raw"


WEIGHTS = ("ema", "raw")


def load_model(project, warn=None, dtype=None, weights: str = "ema") -> LoadedModel:
    """The newest intact checkpoint of the project's model (a damaged newer one is moved aside and
    `warn(text)` says so: `read_newest_intact`), built for compute `dtype` (default: the local
    device's). `weights` "ema" (default): the moving average of the weights when the model keeps one
    (`ema_decay`), else its weights; "raw": the weights the last step left. Raises NoModel (naming
    `facepair train`) when there is none, DamagedModel when every one is damaged. What the swapper
    and the exporter both start from."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from core.jaxmodels.architectures import make_model
    from core.jaxmodels.presets import preset_from_json
    from core.jaxmodels.step import compute_dtype_for

    if weights not in WEIGHTS:
        raise FacepairError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    d = checkpoint_dir(project)
    hint = f"train one first: facepair train {project.name}"
    if not checkpoint_steps(d):
        raise NoModel(f"project {project.name!r} has no trained model yet; {hint}")
    try:
        from core.jobs import locks

        # A training job owns the checkpoints folder while it runs: a reader then leaves it alone.
        found = read_newest_intact(project, only=("params.", "ema.") if weights == "ema" else "params.", warn=warn,
                                   move=locks.holder(project, "model") is None)
    except FacepairError:
        raise
    except Exception as e:
        raise FacepairError(f"could not read the model checkpoint in {d}: {e}") from e
    if found is None:
        raise NoModel(f"project {project.name!r} has no complete checkpoint in {d}; {hint}")
    step, meta, flat = found
    preset = preset_from_json(meta["preset_config"])
    dtype = dtype or compute_dtype_for(jax.devices()[0].platform)
    abstract = nnx.eval_shape(lambda: make_model(preset, rngs=nnx.Rngs(0), dtype=dtype))
    graphdef, abstract_state = nnx.split(abstract)
    used = "ema" if weights == "ema" and any(k.startswith("ema.") for k in flat) else "raw"
    params = unflatten(nnx.to_pure_dict(abstract_state), flat, prefix="params." if used == "raw" else "ema.")
    return LoadedModel(preset=preset, step=int(step), graphdef=graphdef,
                       params=jax.tree.map(jnp.asarray, params), weights=used)


def load_swapper(project, batch: int = 64, warn=None, weights: str = "ema") -> Swapper:
    """The newest intact checkpoint of the project's model (`load_model` with `weights`), ready to swap."""
    import jax
    from flax import nnx

    from core.jaxmodels.step import predict

    loaded = load_model(project, warn=warn, weights=weights)
    graphdef = loaded.graphdef
    fns: dict = {}

    def fn(params, faces, side: str):
        if side not in fns:
            def run(params, faces):
                return predict(nnx.merge(graphdef, params), faces, side)

            fns[side] = jax.jit(run)
        return fns[side](params, faces)

    p = loaded.preset
    return Swapper(preset=p.name, resolution=p.resolution, step=loaded.step, has_mask=p.mask,
                   _params=loaded.params, _fn=fn, batch=batch, coverage=p.coverage, weights=loaded.weights)
