"""The `train` job: faces on the device, the jitted step in a loop, checkpoints, events, previews.

Flow: check the faces (before anything compiles) → pick the held-out faces → put both sides on the
device as uint8 → resume from the newest checkpoint (refusing one of another preset) → loop:
dispatch up to `steps_per_call` steps, then read the *previous* dispatch's metrics (so the host
never waits on the device) → events, previews, checkpoints at their step multiples → on the step
target, a cancel (SIGTERM/SIGINT) or an error the user can fix: save and stop.

Non-finite steps are skipped by the step itself; after `NONFINITE_LIMIT` in a row the job restores
the last checkpoint, halves the learning rate and says so (at most `MAX_RECOVERIES` times).

Several hosts: every process runs this job with the same arguments (`--coordinator`, …); process 0
writes the checkpoints, status, previews and metrics; the others follow its decisions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FacepairError, JobCancelled
from core.system.atomic import atomic_write_bytes, atomic_write_json
from core.system.clock import now_iso
from core.train import model_io, options

MIN_FACES = 4             # per side, after the held-out share is set aside
HOLDOUT_SHARE = 0.1       # of each side's faces, never trained on (for evaluation)
HOLDOUT_MIN_FACES = 2 * MIN_FACES  # a side with fewer faces keeps none back
NONFINITE_LIMIT = 8       # consecutive non-finite steps before restoring the last checkpoint
MAX_RECOVERIES = 5
LR_FACTOR = 0.5
COVERAGE_TOLERANCE = 0.02  # a resume's --coverage within this of the model's own (whole-pixel crops)
DEFAULT_SAVE_EVERY = options.SAVE_EVERY_DEFAULT
DEFAULT_PREVIEW_EVERY = options.PREVIEW_EVERY_DEFAULT
METRICS_INTERVAL_S = 1.0
PREVIEW_FACES = 4


class TrainError(FacepairError):
    """Training cannot start or continue for a reason the user can fix."""


# ---- faces → arrays ---------------------------------------------------------------------------

def _hash01(name: str) -> float:
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 2 ** 32


def choose_holdout(names: list[str], held: list[str] | None = None, trained: list[str] | None = None) -> list[str]:
    """The held-out faces of a side. A face seen before keeps its set (held out, or trained on);
    a new face is held out by a fixed hash of its name (share HOLDOUT_SHARE), never more than twice
    the share by chance of the hash, and a side of HOLDOUT_MIN_FACES or more holds at least one."""
    held_set = set(held or []) & set(names)
    seen = held_set | (set(trained or []) & set(names))
    if len(names) < HOLDOUT_MIN_FACES:
        return sorted(held_set)
    new = sorted((n for n in names if n not in seen and _hash01(n) < HOLDOUT_SHARE), key=_hash01)
    room = max(0, int(2 * HOLDOUT_SHARE * len(names)) - len(held_set))
    out = held_set | set(new[:room])
    if not out:
        unseen = [n for n in names if n not in seen]
        if unseen:
            out = {min(unseen, key=_hash01)}
    return sorted(out)


def region_maps(landmarks: np.ndarray, masks: np.ndarray, size: int) -> np.ndarray:
    """(N, S, S, 3) uint8: landmark-hull mask, eyes, mouth — the loss weights that follow the target."""
    import cv2

    n = len(landmarks)
    out = np.zeros((n, size, size, 3), np.uint8)
    out[..., 0] = masks
    grow = max(1, size // 24)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    for i, lm in enumerate(landmarks):
        eyes = np.zeros((size, size), np.uint8)
        for idx in (slice(36, 42), slice(42, 48)):  # each eye's six points
            cv2.fillConvexPoly(eyes, cv2.convexHull(np.round(lm[idx]).astype(np.int32)), 255)
        mouth = np.zeros((size, size), np.uint8)
        cv2.fillConvexPoly(mouth, cv2.convexHull(np.round(lm[48:60]).astype(np.int32)), 255)
        out[i, ..., 1] = cv2.dilate(eyes, kernel)
        out[i, ..., 2] = cv2.dilate(mouth, kernel)
    return out


@dataclass
class SideData:
    faces: np.ndarray      # (n, R, R, 3) uint8, training faces only
    maps: np.ndarray       # (n, R, R, 3) uint8
    names: list[str]       # training faces
    holdout: list[str]
    source_size: int
    coverage: float | None = None  # of the faces (mean-face units)
    landmarks: np.ndarray | None = None  # (n, 68, 2) in the faces' pixels (uniform yaw reads the pose)


def removed_since(project, trained: dict[str, set[str]]) -> dict[str, int]:
    """How many of the faces a run loaded per side are no longer in faces/SIDE (removed to the trash
    by curation, or deleted): a running job keeps training on them, a resume leaves them out."""
    from core.faces.faceset import face_files

    return {s: len(names - {p.name for p in face_files(project, s)}) for s, names in trained.items()}


def load_side(project, side: str, resolution: int, previous_holdout: list[str] | None,
              previous_trained: list[str] | None = None, coverage: float | None = None) -> SideData:
    """A side's training faces at the model's resolution; clear errors for missing or mixed faces."""
    import cv2

    from core.faces.faceset import load_faceset

    fs = load_faceset(project, side, coverage=coverage)  # FaceSetError (a FacepairError) when none
    mixed = {n: int(why.split(" px")[0].split()[-1]) for n, why in fs.skipped.items() if " px, the others " in why}
    if mixed:
        counts = Counter(mixed.values())
        counts[fs.size] += len(fs.names)
        (main, _), *rest = counts.most_common()
        odd = next(n for n in [*mixed, *fs.names] if (mixed.get(n) or fs.size) != main)
        sizes = ", ".join(f"{c} of {s} px" for s, c in counts.most_common())
        raise TrainError(
            f"side {side} of {project.name!r} has faces of mixed sizes ({sizes}; e.g. {odd} is not {main} px): "
            f"re-extract the side at one size (`facepair extract {project.name} --side {side} --size N`) "
            f"or delete the odd crops")
    holdout = choose_holdout(fs.names, previous_holdout, previous_trained)
    keep = [i for i, n in enumerate(fs.names) if n not in set(holdout)]
    if len(keep) < MIN_FACES:
        raise TrainError(
            f"side {side} of {project.name!r} has {len(keep)} usable face{'s' if len(keep) != 1 else ''} to train on"
            f"{f' ({len(holdout)} more held out)' if holdout else ''}; training needs at least {MIN_FACES} per side: "
            f"add sources (`facepair add-source {project.name} {side} …`) and run `facepair extract`")
    images, masks, lms = fs.images[keep], fs.masks[keep], fs.landmarks[keep]
    if fs.size != resolution:
        k = resolution / fs.size
        interp = cv2.INTER_AREA if resolution < fs.size else cv2.INTER_CUBIC
        images = np.stack([cv2.resize(im, (resolution, resolution), interpolation=interp) for im in images])
        masks = np.stack([cv2.resize(m, (resolution, resolution), interpolation=cv2.INTER_AREA) for m in masks])
        lms = ((lms + 0.5) * k - 0.5).astype(np.float32)
    maps = region_maps(lms, masks, resolution)
    return SideData(faces=np.ascontiguousarray(images), maps=maps, names=[fs.names[i] for i in keep],
                    holdout=holdout, source_size=fs.size, coverage=fs.coverage, landmarks=lms)


# ---- checkpoints --------------------------------------------------------------------------------

def _meta(preset, step: int, batch: int, state_lr: float, origin: dict | None = None) -> dict:
    from core import __version__

    meta = {"preset": preset.name, "preset_config": preset.to_json(), "resolution": preset.resolution,
            "step": int(step), "batch": int(batch), "lr": float(state_lr), "saved": now_iso(),
            "facepair": __version__}
    return {**meta, "init_from": origin} if origin else meta


def _copy_tree(tree):
    """Numpy copies of every leaf (a second, independent set of host weights)."""
    import jax

    return jax.tree.map(np.copy, tree)


def _to_host(tree):
    """Numpy copies of (replicated, possibly multi-process) arrays: this process's replica."""
    import jax

    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)) if hasattr(x, "addressable_data")
                        else np.asarray(x), tree)


def checkpoint_preset(project, warn=None, verified: dict | None = None) -> tuple[int, dict] | None:
    """(step, meta) of the newest intact checkpoint, or None. Every tensor is read back to check it:
    a damaged newer step is moved to `model/checkpoints-damaged/` and `warn(text)` names it
    (core.train.model_io.read_newest_intact; DamagedModel when none is intact). The state read is left in
    `verified[step]` when a dict is given, so a resume need not read it again."""
    found = model_io.read_newest_intact(project, warn=warn)
    if found is None:
        return None
    step, meta, flat = found
    if verified is not None:
        verified.clear()
        verified[step] = flat
    return step, meta


# ---- previews -----------------------------------------------------------------------------------

def preview_grid(rows: list[list[np.ndarray]], header: list[str] | None = None, scale: int = 1) -> np.ndarray:
    """Tile rows of equal-size float [0, 1] or uint8 images into one uint8 RGB image."""
    cells = [[_u8(c) for c in row] for row in rows]
    r = cells[0][0].shape[0]
    gap = max(2, r // 16)
    cols = len(cells[0])
    h = len(cells) * (r + gap) + gap
    w = cols * (r + gap) + gap
    img = np.full((h, w, 3), 24, np.uint8)
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            y, x = gap + i * (r + gap), gap + j * (r + gap)
            img[y:y + r, x:x + r] = c
    if scale > 1:
        img = img.repeat(scale, 0).repeat(scale, 1)
    if header:
        from PIL import Image, ImageDraw

        bar = 14
        canvas = Image.new("RGB", (img.shape[1], img.shape[0] + bar), (24, 24, 24))
        canvas.paste(Image.fromarray(img), (0, bar))
        draw = ImageDraw.Draw(canvas)
        cw = img.shape[1] / len(header)
        for j, text in enumerate(header):
            draw.text((int(j * cw) + 3, 1), text, fill=(230, 230, 230))
        img = np.asarray(canvas)
    return img


def _u8(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    return np.clip(np.nan_to_num(np.asarray(x, np.float32)) * 255 + 0.5, 0, 255).astype(np.uint8)


def write_png(path: Path, img: np.ndarray) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    atomic_write_bytes(path, buf.getvalue())


# ---- the job ------------------------------------------------------------------------------------

def run_job(ctx, preset: str | None = None, batch: int | None = None, steps: int | None = None,
            lr: float | None = None, save_every: int | None = None, preview_every: int | None = None,
            seed: int = 0, keep: int = 3, stream: bool | None = None, steps_per_call: int | None = None,
            coordinator: str | None = None, num_processes: int | None = None,
            process_id: int | None = None, init_from: str | None = None, arch: str | None = None,
            coverage: float | None = None,
            dssim: float | None = None,
            face_weighted: bool | None = None, eye_priority: float | None = None,
            mouth_priority: float | None = None, colour_transfer: float | None = None,
            warp: float | None = None, ema_decay: float | None = None, lr_warmup: int | None = None,
            lr_decay: str | None = None, lr_decay_steps: int | None = None, lr_floor: float | None = None,
            gan_power: float | None = None, lr_dropout: float | None = None,
            gan_from: int | None = None, uniform_yaw: bool | None = None,
            gan_warp: float | None = None, true_face: float | None = None) -> dict:
    """The `train` job kind. `steps` is the step the model should reach (None: until stopped)."""
    from core.train import devices

    distributed = devices.init_distributed(coordinator, num_processes, process_id)
    devices.enable_compile_cache()
    run = TrainingRun(ctx, preset=preset, batch=batch, steps=steps, lr=lr, save_every=save_every,
                      preview_every=preview_every, seed=seed, keep=keep, stream=stream,
                      steps_per_call=steps_per_call, distributed=distributed, init_from=init_from,
                      arch=arch, coverage=coverage,
                      loss=_loss_changes(dssim, face_weighted, eye_priority, mouth_priority),
                      augment=_augment_changes(colour_transfer, warp),
                      schedule=_schedule_changes(ema_decay, lr_warmup, lr_decay, lr_decay_steps, lr_floor,
                                                 gan_power, lr_dropout, gan_from, uniform_yaw, gan_warp,
                                                 true_face))
    return run.run()


def _schedule_changes(ema_decay, lr_warmup, lr_decay, lr_decay_steps, lr_floor, gan_power=None,
                      lr_dropout=None, gan_from=None, uniform_yaw=None, gan_warp=None, true_face=None) -> dict:
    """The Preset fields of the schedule, the weights' average, the discriminator, the
    learning-rate dropout and the faces' draw a run asks to change (None: keep)."""
    asked = {"ema_decay": (ema_decay, float), "warmup_steps": (lr_warmup, int), "lr_decay": (lr_decay, str),
             "lr_decay_steps": (lr_decay_steps, int), "lr_floor": (lr_floor, float),
             "gan_power": (gan_power, float), "lr_dropout": (lr_dropout, float), "gan_from": (gan_from, int),
             "uniform_yaw": (uniform_yaw, bool), "gan_warp": (gan_warp, float), "true_face": (true_face, float)}
    return {k: kind(v) for k, (v, kind) in asked.items() if v is not None}


def _augment_changes(colour_transfer, warp) -> dict:
    """The AugmentConfig fields a run asks to change (None: keep the preset's or the checkpoint's)."""
    asked = {"colour_transfer": colour_transfer, "warp": warp}
    return {k: float(v) for k, v in asked.items() if v is not None}


def _loss_changes(dssim, face_weighted, eye_priority, mouth_priority) -> dict:
    """The LossConfig fields a run asks to change (None: keep the preset's or the checkpoint's)."""
    asked = {"dssim": dssim, "mask_weighted": face_weighted, "eye_multiplier": eye_priority,
             "mouth_multiplier": mouth_priority}
    kinds = {"dssim": float, "mask_weighted": bool, "eye_multiplier": float, "mouth_multiplier": float}
    return {k: kinds[k](v) for k, v in asked.items() if v is not None}


_TRAINERS: dict = {}


def get_trainer(preset, batch: int, streamed: bool, steps_per_call: int | None):
    """A Trainer per configuration and process, so jobs run in one process (tests) compile once."""
    import jax

    from core.jaxmodels.precision import compute_dtype_name
    from core.jaxmodels.step import Trainer

    key = (preset, batch, streamed, steps_per_call, tuple(d.id for d in jax.devices()), jax.process_count(),
           compute_dtype_name(jax.devices()[0].platform))
    if key not in _TRAINERS:
        _TRAINERS[key] = Trainer(preset, batch, mesh=None, streamed=streamed, steps_per_call=steps_per_call)
    return _TRAINERS[key]


class TrainingRun:
    def __init__(self, ctx, *, preset, batch, steps, lr, save_every, preview_every, seed, keep, stream,
                 steps_per_call, distributed, init_from=None, arch=None, coverage=None, loss=None,
                 augment=None, schedule=None):
        import jax

        self.ctx = ctx
        self.project = ctx.project
        self.primary = jax.process_index() == 0
        self.distributed = distributed
        self.requested = dict(preset=preset, batch=batch, steps=steps, lr=lr, arch=arch, init_from=init_from,
                              coverage=None if coverage is None else float(coverage), loss=dict(loss or {}),
                              augment=dict(augment or {}), schedule=dict(schedule or {}))
        self.save_every = int(save_every or DEFAULT_SAVE_EVERY)
        self.preview_every = int(preview_every or DEFAULT_PREVIEW_EVERY)
        if self.save_every < 1 or self.preview_every < 1:
            raise TrainError("--save-every and --preview-every must be at least 1")
        if steps is not None and int(steps) < 1:
            raise TrainError(f"--steps must be at least 1, not {steps}")
        if lr is not None and not (float(lr) > 0 and math.isfinite(float(lr))):
            raise TrainError(f"--lr must be a positive number, not {lr}")
        self.requested["batch"] = options.parse_batch(batch)  # a number ≥ 1, "auto" or None
        self.target = None if steps is None else int(steps)
        self.seed, self.keep, self.stream = int(seed), int(keep), stream
        self.steps_per_call = steps_per_call
        self.model_dir = self.project.model_dir
        self._verified: dict[int, dict] = {}
        self.warm = None  # (other project, its step, its flat weights) for a warm start
        self.origin = None  # the warm start's record (core.train.warm_start.record)

    # -- setup -------------------------------------------------------------------------------
    def _resolve_preset(self):
        """The preset to train: the checkpoint's when there is one (refusing another), else the request."""
        import jax

        from core.jaxmodels.presets import get_preset, preset_from_json

        found = checkpoint_preset(self.project, self.ctx.warning, self._verified) if self.primary else None
        name = self.requested["preset"]
        if found is not None and self.requested["init_from"]:
            raise TrainError(
                f"--init-from starts a new model, and {self.project.name!r} has one at step {found[0]}: leave "
                f"--init-from out to resume it, or move {self.model_dir} away to start again from "
                f"{self.requested['init_from']!r}")
        if found is not None:
            step, meta = found
            if name is not None and name != meta["preset"]:
                raise TrainError(
                    f"the model of {self.project.name!r} is a {meta['preset']!r} model at step {step}; it cannot "
                    f"continue as {name!r}. Resume it with --preset {meta['preset']} (or leave --preset out), or "
                    f"move {self.model_dir} away to start a new {name!r} model")
            preset = preset_from_json(meta["preset_config"])
            self._check_coverage(preset, step)
            self._check_arch(preset, step)
            from core.train import warm_start

            self.origin = warm_start.load_record(self.model_dir)  # later checkpoints keep naming it
            return preset, found
        if self.requested["init_from"]:
            return self._warm_preset(name), None
        if name is None:
            name = "lite" if jax.devices()[0].platform == "cpu" else "original"
            self.ctx.message(f"no model yet and no --preset: starting a {name!r} model")
        preset = get_preset(name)
        if self.requested["coverage"] is not None:
            preset = dataclasses.replace(preset, coverage=self.requested["coverage"])
        if self.requested["arch"] not in (None, preset.arch):
            from core.jaxmodels.architectures import with_arch

            preset = with_arch(preset, self.requested["arch"])
            self.ctx.message(f"architecture {preset.arch}: {preset.param_count:,} parameters")
        return preset, None

    def _with_loss(self, preset):
        """The preset with the loss and augmentation this run asks for: neither shapes a weight, so
        a resume may change them (the checkpoint records what it was last trained with)."""
        for part in ("loss", "augment"):
            changes, now = self.requested[part], getattr(preset, part)
            if not changes or all(getattr(now, k) == v for k, v in changes.items()):
                continue
            self.ctx.message(f"{part}: " + ", ".join(f"{k} {getattr(now, k)} → {v}" for k, v in changes.items()
                                                     if getattr(now, k) != v))
            preset = dataclasses.replace(preset, **{part: dataclasses.replace(now, **changes)})
        return preset

    def _with_schedule(self, preset):
        """The preset with the learning-rate schedule, weight average and GAN power this run asks for.
        Like the loss they shape no weight of the model, so a resume may change them (a discriminator
        turned on at a resume starts fresh, as DeepFaceLab's does); the checkpoint records them, so a
        resume without options continues the schedule (a function of the model's step) exactly. A
        cosine decay without an end step ends at this run's --steps."""
        changes = dict(self.requested["schedule"])
        said = [f"{k} {getattr(preset, k)} → {v}" for k, v in changes.items() if getattr(preset, k) != v]
        if said:
            self.ctx.message("training: " + ", ".join(said))
        try:
            preset = dataclasses.replace(preset, **changes) if changes else preset
        except ValueError as e:  # the preset's own check (a direct call; the spec refuses these first)
            raise TrainError(str(e)) from None
        if preset.lr_decay != "none" and preset.lr_decay_steps is None:
            if self.target is None:
                raise TrainError(f"--lr-decay {preset.lr_decay} needs the step where it ends: pass --steps N (the "
                                 f"decay then ends there) or --lr-decay-steps N")
            preset = dataclasses.replace(preset, lr_decay_steps=self.target)
        if preset.lr_decay != "none" and preset.lr_decay_steps <= preset.warmup_steps:
            raise TrainError(f"the learning-rate decay must end after the warm-up: step {preset.lr_decay_steps} is "
                             f"not after {preset.warmup_steps} warm-up steps (--lr-decay-steps, --lr-warmup)")
        if preset.lr_decay != "none":
            self.ctx.message(f"learning rate: warm-up over {preset.warmup_steps} steps, then {preset.lr_decay} "
                             f"down to {preset.lr_floor:g} of it at step {preset.lr_decay_steps}")
        if preset.ema_decay:
            self.ctx.message(f"keeps a moving average of the weights (decay {preset.ema_decay:g}): previews and "
                             f"conversion use it")
        if preset.lr_dropout:
            self.ctx.message(f"learning-rate dropout: each step updates about {1 - preset.lr_dropout:.0%} of the "
                             f"weights (each at random)")
        if preset.true_face:
            self.ctx.message(f"trains a true-face code discriminator beside the model (power {preset.true_face:g}): "
                             f"B's codes are pushed to look like A's")
        if preset.gan_power:
            start = f" from step {preset.gan_from}" if preset.gan_from else ""
            warp = preset.program_at(preset.gan_from).augment.warp
            said = f", random warp {warp:g}" if warp != preset.augment.warp else ""
            self.ctx.message(f"trains a patch discriminator beside the model{start} (GAN power {preset.gan_power:g}"
                             f"{said})")
        return preset

    def _check_coverage(self, preset, step: int) -> None:
        """A model keeps the crop it was trained on: a resume that asks for another is refused."""
        asked = self.requested["coverage"]
        if asked is None:
            return
        had = preset.coverage
        if had is None or abs(had - asked) > COVERAGE_TOLERANCE:
            words = "the extracted crops' own coverage" if had is None else f"coverage {had:.3g}"
            raise TrainError(
                f"the model of {self.project.name!r} was trained at {words} (step {step}); it cannot continue "
                f"at --coverage {asked:g}. Leave --coverage out to resume, or move {self.model_dir} away to "
                f"start a new model")

    def _warm_preset(self, name):
        """A warm start's preset: the other model's (its shapes are the weights'), at this run's
        --coverage when asked. The weights themselves are read here, put in at `_warm_state`."""
        from core.jaxmodels.presets import preset_from_json
        from core.train import warm_start

        try:
            other, step, meta, flat = warm_start.read_source(self.project, self.requested["init_from"],
                                                             self.ctx.warning)
        except FacepairError as e:
            raise TrainError(str(e)) from None
        preset = preset_from_json(meta["preset_config"])
        for asked, had, flag in ((name, meta["preset"], "--preset"), (self.requested["arch"], preset.arch, "--arch")):
            if asked is not None and asked != had:
                raise TrainError(f"--init-from {other.name}: its model is {flag.lstrip('-')} {had} (step {step}); a "
                                 f"warm start keeps its shapes, so it cannot be {flag} {asked}: leave {flag} out")
        if self.requested["coverage"] is not None:
            preset = dataclasses.replace(preset, coverage=self.requested["coverage"])
        self.warm = (other, step, flat)
        return preset

    def _warm_state(self, state):
        """The fresh state with the carried parts of the other model's weights (optimizer fresh)."""
        from core.train import warm_start

        other, step, flat = self.warm
        host = _to_host(state)
        theirs = model_io.unflatten(host.params, flat, prefix="params.")
        labels = {s: self.project.label(s) for s in ("a", "b")}
        parts = warm_start.carried_parts(self.preset.arch, {s: other.label(s) for s in ("a", "b")}, labels)
        params = warm_start.compose(host.params, theirs, parts)
        host = host._replace(params=params, ema=_copy_tree(params) if host.ema else {})
        self.origin = warm_start.record(other, step, parts)
        if self.primary:
            warm_start.save_record(self.model_dir, self.origin)
        self.ctx.message(f"warm start from the model of project {other.name!r} at step {step}: "
                         + warm_start.describe(parts, host.params))
        return self.trainer.put_state(host)

    def _check_arch(self, preset, step: int) -> None:
        """A model keeps its architecture: its weights are that architecture's."""
        asked = self.requested["arch"]
        if asked is not None and asked != preset.arch:
            raise TrainError(
                f"the model of {self.project.name!r} is a {preset.arch} model (step {step}); it cannot continue "
                f"as --arch {asked}. Leave --arch out to resume, or move {self.model_dir} away to start a new model")

    def _load_data(self, preset):
        from core.jaxmodels.step import FaceData

        previous = {}
        if (self.model_dir / model_io.HOLDOUT).is_file():
            from core.system.atomic import read_json

            try:
                previous = read_json(self.model_dir / model_io.HOLDOUT)
            except ValueError:
                previous = {}
        trained = self.previous_trained = previous.get("trained") or {}
        sides = {s: load_side(self.project, s, preset.resolution, previous.get(s), trained.get(s), preset.coverage)
                 for s in ("a", "b")}
        if sides["a"].source_size != sides["b"].source_size:
            raise TrainError(
                f"the faces of side a are {sides['a'].source_size} px and those of side b "
                f"{sides['b'].source_size} px: extract both sides at one size "
                f"(`facepair extract {self.project.name} --size N`)")
        picks = {s: self._yaw_picks(s, sides[s]) if preset.uniform_yaw else None for s in ("a", "b")}
        data = FaceData(sides["a"].faces, sides["a"].maps, sides["b"].faces, sides["b"].maps, picks["a"], picks["b"])
        return sides, data

    def _yaw_picks(self, side: str, data: SideData) -> np.ndarray:
        """The side's index table of faces balanced over head yaw (core/train/yaw_balance.py)."""
        from core.train import yaw_balance

        yaws = yaw_balance.face_yaws(data.landmarks)
        self.ctx.message(f"uniform yaw, side {side}: {yaw_balance.describe(yaws)}")
        return yaw_balance.balanced_picks(yaws)

    def _framed_preset(self, preset, sides):
        """The preset with the coverage its faces really have (whole pixels of the stored crops), so
        conversion frames faces exactly as training did."""
        if preset.coverage is None:
            return preset
        a, b = sides["a"].coverage, sides["b"].coverage
        if abs(a - b) > 1e-6:
            raise TrainError(f"the crops of side a frame coverage {a:.4g} and those of side b {b:.4g} at "
                             f"--coverage {preset.coverage:g}: extract both sides with the same settings")
        if abs(a - preset.coverage) > 1e-9:
            self.ctx.message(f"coverage {preset.coverage:g} is {a:.4g} on these crops (whole pixels)")
        return dataclasses.replace(preset, coverage=a)

    def _check_consistent(self, sides) -> None:
        """Every process must hold the same faces (the data is replicated, the batch sharded)."""
        if not self.distributed:
            return
        from jax.experimental import multihost_utils

        digest = hashlib.sha1("|".join(sides["a"].names + ["#"] + sides["b"].names).encode()).digest()[:4]
        mine = np.array([len(sides["a"].names), len(sides["b"].names), int.from_bytes(digest, "little") & 0x7FFFFFFF],
                        np.int64)
        every = np.asarray(multihost_utils.process_allgather(mine))
        if not (every == every[0]).all():
            raise TrainError("the processes of this multi-host run hold different faces "
                             f"(counts and names per process: {every.tolist()}); copy the same faces/ to every host")

    def _check_same(self, value, what: str) -> None:
        """Every process must agree on `value` (JSON-able); a clear error on all of them otherwise."""
        import json

        from jax.experimental import multihost_utils

        h = int.from_bytes(hashlib.sha1(json.dumps(value, sort_keys=True).encode()).digest()[:4], "little") & 0x7FFFFFFF
        every = np.asarray(multihost_utils.process_allgather(np.array([h], np.int64))).ravel()
        if not (every == every[0]).all():
            raise TrainError(f"the processes of this multi-host run disagree on the {what}")

    def _broadcast(self, values: np.ndarray) -> np.ndarray:
        if not self.distributed:
            return values
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.broadcast_one_to_all(values))

    def _auto_batch(self, preset, info, host_data, streamed: bool, memory: int | None) -> int:
        """`--batch auto` (the default on a GPU): the largest batch whose compiled plan fits the device
        (core.train.plan.auto_batch), said in the job's events; process 0's choice for every process."""
        import jax

        from core.jaxmodels.precision import compute_dtype_name
        from core.train.plan import auto_batch

        folder = jax.config.jax_compilation_cache_dir
        faces = -(-(len(host_data.faces_a) + len(host_data.faces_b)) // 2)
        try:
            choice = auto_batch(preset, faces, memory, dtype=compute_dtype_name(info.platform), devices=info.total,
                                streamed=streamed, cache_path=Path(folder) / "facepair-plans.json" if folder else None)
        except FacepairError as e:
            raise TrainError(str(e)) from None
        batch = int(self._broadcast(np.array([choice["batch"]], np.int64))[0])
        if batch % info.total:
            raise TrainError(f"batch auto: {batch} does not split over {info.total} devices: pass --batch N, "
                             f"a multiple of {info.total}")
        self.ctx.message(choice["why"])
        return batch

    def _plan_stream(self, preset, info, host_data, batch: int, memory: int | None) -> bool:
        """Host streaming when the plan says the face set does not fit the device (core.train.plan
        .choose_stream, at `batch`: the preset's under --batch auto); process 0's choice for all."""
        import jax

        from core.jaxmodels.precision import compute_dtype_name
        from core.train.plan import choose_stream

        if memory is None:
            return False
        folder = jax.config.jax_compilation_cache_dir
        faces = -(-(len(host_data.faces_a) + len(host_data.faces_b)) // 2)
        choice = choose_stream(preset, faces, memory, batch, dtype=compute_dtype_name(info.platform),
                               cache_path=Path(folder) / "facepair-plans.json" if folder else None)
        streamed = bool(self._broadcast(np.array([choice["streamed"]], np.int64))[0])
        if streamed and choice["why"]:
            self.ctx.message(choice["why"])
        return streamed

    # -- main ----------------------------------------------------------------------------------
    def run(self) -> dict:
        from core.train import devices

        ctx = self.ctx
        info = devices.device_info()
        self.device_text = info.describe()
        ctx.message(self.device_text)
        preset, found = self._resolve_preset()
        preset = self._with_schedule(self._with_loss(preset))
        if self.distributed:
            self._check_same(preset.to_json(), "model preset (pass the same --preset to every process)")
        auto = options.batch_is_auto(self.requested["batch"], info.platform)
        batch = preset.batch if auto or self.requested["batch"] is None else int(self.requested["batch"])
        n_dev = info.total
        if not auto and batch % n_dev:
            raise TrainError(f"--batch {batch} does not split over {n_dev} devices: use a multiple of {n_dev} "
                             f"(e.g. {max(n_dev, batch // n_dev * n_dev)})")
        sides, host_data = self._load_data(preset)
        preset = self._framed_preset(preset, sides)
        self._check_consistent(sides)
        nbytes = sum(x.nbytes for x in host_data[:4])
        limit = devices.device_memory_bytes()
        streamed = bool(self.stream) if self.stream is not None else self._plan_stream(preset, info, host_data, batch, limit)
        if auto:
            batch = self._auto_batch(preset, info, host_data, streamed, limit)
        if self.primary:
            atomic_write_json(self.model_dir / model_io.HOLDOUT, {
                "a": sides["a"].holdout, "b": sides["b"].holdout, "share": HOLDOUT_SHARE,
                "trained": {s: sorted(set(sides[s].names) | set(self.previous_trained.get(s, [])))
                            for s in ("a", "b")},
            })
        ctx.message(f"{preset.name}: {preset.resolution}px, batch {batch} per side; faces A {len(sides['a'].names)} "
                    f"(+{len(sides['a'].holdout)} held out), B {len(sides['b'].names)} (+{len(sides['b'].holdout)} held out); "
                    f"{nbytes / 2**20:.1f} MiB of faces {'streamed from the host' if streamed else 'on the device'}")

        # Resume (primary decides, others follow), else a fresh state.
        code = np.array([0 if found is None else 1, 0 if found is None else found[0]], np.int64)
        code = self._broadcast(code)
        self.preset, self.batch, self.streamed = preset, batch, streamed  # the preset the checkpoints record
        trainer = get_trainer(self._running_preset(int(code[1])), batch, streamed, self.steps_per_call)
        self.trainer = trainer
        self.host_data = host_data
        self.data = None if streamed else trainer.put_data(host_data)
        self.preview_faces = self._pick_preview_faces(sides)
        self.loaded_faces = {s: set(sides[s].names) for s in ("a", "b")}
        self.removed_said = {"a": 0, "b": 0}
        if code[0] == 1:
            state = self._restore_state(int(code[1]))
            ctx.message(f"resumed from the checkpoint at step {int(code[1])}")
        else:
            state = trainer.init_state(self.seed)
            if self.warm is not None:
                state = self._warm_state(state)
        if self.requested["lr"] is not None:
            state = state._replace(lr=_replicated_scalar(trainer, np.float32(self.requested["lr"])))
        self.manager = model_io.checkpoint_manager(model_io.checkpoint_dir(self.project), keep=self.keep) \
            if self.primary else None
        if self.primary and not (self.model_dir / model_io.CONFIG).is_file():
            atomic_write_json(self.model_dir / model_io.CONFIG, preset.to_json())
        try:
            return self._loop(state)
        finally:
            if self.manager is not None:
                self.manager.close()

    def _running_preset(self, step: int):
        """The preset the step runs at `step`: the recorded one, without its discriminator before
        `gan_from` (the plain step, at the plain step's speed)."""
        return self.preset.program_at(step)

    def _gan_joins(self, state):
        """At `gan_from`: the same weights and Adam state in the discriminator's program, with a fresh
        discriminator (as a resume that turns it on gives). Every process holds the replicated state,
        so each converts its own copy; the face data on the device is the same."""
        import jax

        jax.block_until_ready(state)
        flat = model_io.flatten(_to_host(state))
        trainer = get_trainer(self.preset.program_at(self.preset.gan_from), self.batch, self.streamed,
                              self.steps_per_call)
        fresh = model_io.flatten(_to_host(trainer.init_state(self.seed)))
        flat.update({k: v for k, v in fresh.items() if k.startswith(("disc.", "disc_opt."))})
        self.trainer = trainer
        warp = trainer.preset.augment.warp
        said = f", random warp {warp:g}" if warp != self.preset.augment.warp else ""
        self.ctx.message(f"step {self.preset.gan_from}: the patch discriminator joins (GAN power "
                         f"{self.preset.gan_power:g}{said}); it starts fresh")
        return trainer.put_state(model_io.unflatten(trainer.abstract_state(), flat))

    def _restore_state(self, step: int):
        trainer = self.trainer
        abstract = trainer.abstract_state()
        if self.primary:
            flat = self._verified.pop(step, None)  # read and checked by checkpoint_preset
            if flat is None:
                manager = model_io.checkpoint_manager(model_io.checkpoint_dir(self.project), read_only=True)
                try:
                    flat = model_io.read_state(manager, step)
                finally:
                    manager.close()
            flat = model_io.upgrade_flat_state(flat, abstract)
            fresh = None
            for part, name in (("disc", "discriminator"), ("code_disc", "true-face discriminator")):
                if model_io.flatten(getattr(abstract, part)) and not any(k.startswith(f"{part}.") for k in flat):
                    fresh = fresh or model_io.flatten(_to_host(trainer.init_state(self.seed)))
                    flat = {**flat, **{k: v for k, v in fresh.items() if k.startswith((f"{part}.", f"{part}_opt."))}}
                    self.ctx.message(f"the checkpoint at step {step} has no {name} yet: it starts fresh")
            host = model_io.unflatten(abstract, flat)
        else:
            import jax

            host = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), abstract)
        if self.distributed:
            from jax.experimental import multihost_utils

            host = multihost_utils.broadcast_one_to_all(host)
        return trainer.put_state(host)

    def _pick_preview_faces(self, sides) -> dict[str, np.ndarray]:
        out = {}
        for s in ("a", "b"):
            faces = sides[s].faces
            idx = np.linspace(0, len(faces) - 1, min(PREVIEW_FACES, len(faces))).round().astype(int)
            out[s] = faces[idx]
        return out

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self, state) -> dict:
        import jax

        ctx, trainer = self.ctx, self.trainer
        k = trainer.steps_per_call
        step = int(np.asarray(state.step.addressable_data(0)))
        self.start_step = step
        acc = _Acc(lr=float(np.asarray(state.lr.addressable_data(0))), read_step=step)
        if self.target is not None and step >= self.target:
            ctx.message(f"the model is already at step {step} (target {self.target}); nothing to train")
            return self._result(step, None, None, 0.0)
        ctx.progress(step, self.target, stage="compiling the training step", unit="steps", force=True)
        acc.t_start = time.monotonic()
        pending = None        # (metrics, first step, n) of the dispatch not read yet
        dispatched = step     # the step the device reaches once everything dispatched has run
        while True:
            if not trainer.gan and self.preset.gan_power and dispatched >= self.preset.gan_from:
                if pending is not None:
                    self._consume(pending, acc)  # read with the program that ran it
                    pending = None
                state = self._gan_joins(state)
                trainer = self.trainer
            # How many steps to fuse: up to k, landing exactly on saves, previews, the target and
            # the step the discriminator joins at.
            bounds = [dispatched + k, _next_multiple(dispatched, self.save_every),
                      _next_multiple(dispatched, self.preview_every)]
            if self.target is not None:
                bounds.append(self.target)
            if not trainer.gan and self.preset.gan_power and self.preset.gan_from > dispatched:
                bounds.append(self.preset.gan_from)
            n = min(bounds) - dispatched
            data = self.data if not self.streamed else self._host_chunk(dispatched)
            state, metrics = trainer.train_steps(state, data, n)
            this = (metrics, dispatched, n)
            dispatched += n
            if pending is not None:
                self._consume(pending, acc)  # the previous dispatch: read one step late
                if acc.bad_streak >= NONFINITE_LIMIT:
                    acc.recoveries += 1
                    if acc.recoveries > MAX_RECOVERIES:
                        raise TrainError(
                            f"training keeps producing non-finite losses or gradients ({MAX_RECOVERIES} restores "
                            f"with a lower learning rate did not help; last lr {acc.lr:.3g}): start again with a "
                            f"lower --lr, or check the faces")
                    jax.block_until_ready(state)
                    state, acc.lr, dispatched = self._recover(state)
                    acc.bad_streak, acc.losses, pending = 0, [], None
                    acc.read_step = dispatched
                    continue
            pending = this
            if acc.losses and time.monotonic() - acc.last_emit >= METRICS_INTERVAL_S:
                self._emit_metrics(acc)
            stop = self._should_stop(dispatched)
            if dispatched % self.preview_every == 0 and self.primary:
                self._preview(state, dispatched)
            if dispatched % self.save_every == 0 or stop:
                self._consume(pending, acc)
                pending = None
                self._save(state, dispatched, acc.last, acc.lr)
            if stop:
                break
        if acc.losses:
            self._emit_metrics(acc)
        elapsed = time.monotonic() - acc.t0 if acc.t0 else 0.0
        if stop == "cancelled":
            ctx.message(f"stopped at step {dispatched} on request; the checkpoint is saved")
            raise JobCancelled()
        ctx.progress(dispatched, self.target, stage="training", unit="steps", force=True)
        return self._result(dispatched, *acc.last, elapsed)

    def _consume(self, pending, acc: _Acc) -> None:
        """Read a dispatch's metrics into the accumulator (blocks only if it has not finished)."""
        read = self._read(pending)
        now = time.monotonic()
        if acc.t0 is None:  # the first dispatch included the compile: time from its end
            acc.t0 = acc.window_t = now
            self.ctx.message(f"compiled the training step and ran it in {now - acc.t_start:.1f} s")
        else:
            acc.window_steps += read["n"]
        acc.bad_streak = 0 if read["nonfinite_tail"] < read["n"] else acc.bad_streak
        acc.bad_streak += read["nonfinite_tail"]
        acc.skipped += read["skipped"]
        acc.gan.extend(read["gan"])
        acc.true_face.extend(read["true_face"])
        if read["losses"]:
            acc.losses.extend(read["losses"])
            acc.last = read["losses"][-1]
        if read["lr"] is not None:
            acc.lr = read["lr"]
        acc.read_step = pending[1] + pending[2]

    def _should_stop(self, done_step: int) -> str | None:
        want = None
        if self.target is not None and done_step >= self.target:
            want = "target"
        elif self.ctx.cancelled:
            want = "cancelled"
        if self.distributed:
            # Every process must stop at the same step: agree at every dispatch (a tiny all-gather).
            from jax.experimental import multihost_utils

            flags = np.asarray(multihost_utils.process_allgather(np.array([self.ctx.cancelled], np.int32)))
            if want is None and flags.any():
                want = "cancelled"
        return want

    def _read(self, pending) -> dict:
        metrics, _first, n = pending
        m = {k: np.asarray(v.addressable_data(0))[:n] for k, v in metrics.items()}
        finite = m["finite"].astype(bool)
        tail = n - (int(np.flatnonzero(finite)[-1]) + 1) if finite.any() else n
        losses = [(float(a), float(b)) for a, b, f in zip(m["loss_a"], m["loss_b"], finite, strict=True) if f]
        gan = [(float(g), float(d)) for g, d, f in zip(m["gan_g"], m["gan_d"], finite, strict=True) if f] \
            if self.trainer.gan else []
        true_face = [(float(g), float(d)) for g, d, f in zip(m["true_face_g"], m["true_face_d"], finite, strict=True)
                     if f] if self.trainer.true_face else []
        return {"n": n, "losses": losses, "gan": gan, "true_face": true_face, "lr": float(m["lr"][-1]) if n else None,
                "nonfinite_tail": tail, "skipped": int((~finite).sum())}

    def _emit_metrics(self, acc: _Acc) -> None:
        la = float(np.mean([x[0] for x in acc.losses]))
        lb = float(np.mean([x[1] for x in acc.losses]))
        acc.losses = []
        now = time.monotonic()
        acc.last_emit = now
        step = acc.read_step
        fields = dict(step=step, loss_a=la, loss_b=lb, lr=acc.lr, elapsed_s=round(now - (acc.t0 or now), 2),
                      device=self.device_text, skipped=acc.skipped)
        if acc.gan:  # the discriminator's game: ln 4 ≈ 1.39 for D at chance, → 0 when it wins
            fields.update(gan_g=float(np.mean([g for g, _ in acc.gan])), gan_d=float(np.mean([d for _, d in acc.gan])))
            acc.gan = []
        if acc.true_face:  # the code discriminator's: the same scale
            fields.update(true_face_g=float(np.mean([g for g, _ in acc.true_face])),
                          true_face_d=float(np.mean([d for _, d in acc.true_face])))
            acc.true_face = []
        if acc.window_t is not None and acc.window_steps > 0:
            sps = acc.window_steps / max(1e-9, now - acc.window_t)
            fields.update(steps_per_s=round(sps, 3), images_per_s=round(sps * self.batch * 2, 2))
            if self.target is not None:
                fields["eta_s"] = round(max(0, self.target - step) / sps, 1)
            acc.window_t, acc.window_steps = now, 0
        self.ctx.metrics(**fields)
        extra = {"eta_s": fields["eta_s"]} if "eta_s" in fields else {}
        self.ctx.progress(step, self.target, stage="training", unit="steps", info=f"loss A {la:.4f}  B {lb:.4f}",
                          **extra)

    def _host_chunk(self, step: int):
        """Streaming mode: the exact faces of the next steps_per_call steps, picked on the host."""
        from core.jaxmodels.step import FaceData

        rng = np.random.default_rng([self.seed, step])
        k, b, d = self.trainer.steps_per_call, self.batch, self.host_data
        ia, ib = (rng.integers(0, len(faces), k * b) if picks is None else picks[rng.integers(0, len(picks), k * b)]
                  for faces, picks in ((d.faces_a, d.picks_a), (d.faces_b, d.picks_b)))
        return self.trainer.put_data(FaceData(d.faces_a[ia], d.maps_a[ia], d.faces_b[ib], d.maps_b[ib]))

    def _recover(self, state):
        """Too many non-finite steps in a row: back to the last checkpoint with half the base learning
        rate (the state's: the rate the schedule scales, not the scaled rate of the last step)."""
        lr_now = float(np.asarray(state.lr.addressable_data(0)))
        new_lr = lr_now * LR_FACTOR
        found = checkpoint_preset(self.project, self.ctx.warning, self._verified) if self.primary else None
        if self.manager is not None:
            self.manager.reload()  # a damaged step may have been moved aside
        code = self._broadcast(np.array([0 if found is None else found[0], 0 if found is None else 1], np.int64))
        if code[1]:
            state = self._restore_state(int(code[0]))
            where = f"the checkpoint at step {int(code[0])}"
        else:
            state = self.trainer.init_state(self.seed)
            where = "the initial weights (no checkpoint yet)"
        state = state._replace(lr=_replicated_scalar(self.trainer, np.float32(new_lr)),
                               bad_streak=_replicated_scalar(self.trainer, np.int32(0)))
        step = int(np.asarray(state.step.addressable_data(0)))
        self.ctx.warning(f"{NONFINITE_LIMIT} non-finite steps in a row: restored {where} and lowered the "
                         f"learning rate from {lr_now:.3g} to {new_lr:.3g}")
        return state, new_lr, step

    def _preview(self, state, step: int) -> None:
        import jax

        tr = self.trainer
        params = jax.tree.map(lambda x: x.addressable_data(0), state.ema or state.params)  # the EMA when kept
        fa, fb = self.preview_faces["a"], self.preview_faces["b"]
        out = {}
        for name, faces, side in (("aa", fa, "a"), ("ab", fa, "b"), ("bb", fb, "b"), ("ba", fb, "a")):
            rgb, _ = tr.predict(params, faces, side)
            out[name] = np.asarray(rgb)
        rows = []
        for i in range(max(len(fa), len(fb))):
            row = []
            for faces, same, other in ((fa, out["aa"], out["ab"]), (fb, out["bb"], out["ba"])):
                if i < len(faces):
                    row += [faces[i], same[i], other[i]]
                else:
                    row += [np.zeros_like(faces[0])] * 3
            rows.append(row)
        r = self.preset.resolution
        grid = preview_grid(rows, header=["A", "A>A", "A>B", "B", "B>B", "B>A"], scale=max(1, 128 // r))
        numbered = self.ctx.dir / "previews" / f"{step:08d}.png"
        write_png(numbered, grid)
        newest = self.ctx.dir / "preview.png"
        write_png(newest, grid)
        self.ctx.emit("preview", step=step, path=str(newest), numbered=str(numbered))

    def _save(self, state, step: int, last, lr: float) -> None:
        if not self.primary:
            return
        host = _to_host(state)
        flat = model_io.flatten(host)
        model_io.save_checkpoint(self.manager, step, flat, _meta(self.preset, step, self.batch, lr, self.origin))
        self._write_status(step, *last, lr)
        self._note_removed()

    def _note_removed(self) -> None:
        """At a checkpoint: say (once per new count) that faces this run trains on were removed."""
        for side, n in removed_since(self.project, self.loaded_faces).items():
            if n > self.removed_said[side]:
                self.removed_said[side] = n
                self.ctx.message(f"{n} of the {len(self.loaded_faces[side])} side-{side} faces this run trains on "
                                 f"were removed from faces/{side}: this run keeps training on them; stop it and "
                                 f"resume (`facepair train {self.project.name}`) to leave them out", "warning")

    def _write_status(self, step: int, loss_a, loss_b, lr: float) -> None:
        if not self.primary:
            return
        atomic_write_json(self.model_dir / model_io.STATUS, {
            "preset": self.preset.name, "resolution": self.preset.resolution, "step": int(step),
            "loss_a": loss_a, "loss_b": loss_b, "updated": now_iso(), "batch": self.batch, "lr": lr,
            "device": self.device_text, "job": self.ctx.job_id,
        })

    def _result(self, step: int, loss_a, loss_b, elapsed: float) -> dict:
        trained = step - self.start_step
        return {"preset": self.preset.name, "step": int(step), "steps_trained": int(trained),
                "loss_a": loss_a, "loss_b": loss_b, "seconds": round(elapsed, 2),
                "images_per_s": round(trained * self.batch * 2 / elapsed, 2) if elapsed > 0 and trained else None,
                "checkpoint": str(model_io.checkpoint_dir(self.project))}


@dataclass
class _Acc:
    """What the loop has read back so far."""

    lr: float
    read_step: int
    t_start: float = 0.0
    t0: float | None = None
    window_t: float | None = None
    window_steps: int = 0
    last_emit: float = 0.0
    losses: list = field(default_factory=list)
    gan: list = field(default_factory=list)  # (generator's, discriminator's) adversarial loss per step
    true_face: list = field(default_factory=list)  # the same, of the code discriminator
    last: tuple = (None, None)
    bad_streak: int = 0
    skipped: int = 0
    recoveries: int = 0


def _next_multiple(x: int, every: int) -> int:
    return (x // every + 1) * every


def _replicated_scalar(trainer, value):
    from core.jaxmodels.step import put_replicated

    return put_replicated(np.asarray(value), trainer.replicated)
