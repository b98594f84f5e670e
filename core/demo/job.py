"""The demo: a sample project made from two public-domain stills, run end to end.

    facepair demo [--preset lite] [--steps N | --minutes M] [--fresh] [--name demo]   (make demo)

`prepare(home)` creates (or reopens) project `demo`: person A is scikit-image's astronaut portrait
(Eileen Collins, NASA), person B matplotlib's sample portrait of Grace Hopper, both public domain
and installed with those packages, so the demo needs no network and no footage. The consent record
says exactly that. The `demo` job then runs each stage as its own detached job, so the TUI and
`facepair jobs` show them like any other run, and follows it, passing on its progress:

1. clips: from each still, a short training clip with head motion (small rotations, zoom, pan,
   light changes; core.media.synth), and from A a separate target clip with a generated audio track;
2. `extract` on both sides;
3. `train` (preset `lite` by default) for a budget: `steps` more steps, or `minutes` of the training
   job's wall time (compile included), after which the demo stops it the way Ctrl-C does (the job
   saves its checkpoint and ends `cancelled`); it trains on the GPU when JAX has one. The demo's
   model is the preset with lighter augmentation (`DEMO_AUGMENT`) and a higher learning rate: the
   clips already rotate, zoom, pan and relight the head, and with the preset's own augmentation on
   top the 64 px model is still a blur after minutes on a CPU (measured: docs/demo.md). The train
   job has no option for that, so the demo writes the new model's step-0 checkpoint itself
   (`seed_model`): the job resumes from it with the config stored there, as it does for any model;
4. `convert` the target clip (B's face on A, audio kept, labelled), and a side-by-side frame
   (original | converted) as a PNG in the demo job's folder.

Running it again reuses what is there: clips and faces are kept, the model resumes from its
checkpoint and trains the budget again, the output is replaced. Changed clip settings rebuild the
clips, faces and model; another preset starts a new model; `fresh` rebuilds everything. A project
named `demo` that the demo did not make is never touched.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import time
from pathlib import Path

from core.demo import options
from core.errors import FacepairError, JobCancelled
from core.system.atomic import atomic_write_json, read_json
from core.train.options import GRACE_S as TRAIN_GRACE_S

NAME = "demo"
MARKER = "demo.json"  # in the project folder: made by the demo, with the clip settings
LABEL_A = "Astronaut"
LABEL_B = "Grace Hopper"
CONSENT = (
    "Public-domain sample images, not footage of consenting people: person A is scikit-image's "
    "'astronaut' portrait (Eileen Collins, NASA, released into the public domain) and person B is "
    "matplotlib's sample portrait of Grace Hopper (public domain). Both ship with those packages. "
    "The demo moves each still synthetically (two stills, not real footage) only to show how facepair "
    "works; every output is labelled as synthetic."
)
CONSENT_BY = ("scikit-image sample data (public domain)", "matplotlib sample data (public domain)")

DEFAULT_PRESET = options.PRESET_DEFAULT
DEFAULT_MINUTES = options.MINUTES_DEFAULT
DEFAULT_FRAMES = 96          # per training clip (4 s at 24 fps)
DEFAULT_TARGET_FRAMES = 72   # the clip converted (3 s, with audio)
CLIP_SIZE = (320, 240)
FPS = 24.0
SEEDS = {"a": 11, "b": 12, "target": 13}
EXTRACT_SIZE = 128           # crops for a 64 px model (tiny and lite resize them)
TRAIN_BATCH = options.BATCH_DEFAULT            # faces per side per step: small batches, more steps in the budget
TRAIN_LR = 5e-4              # the demo's faces are two stills: a high rate converges in minutes
# The clips already move the head (±6° roll, ±6 % zoom, ±4 % pan, light changes): a light touch on
# top, instead of the presets' ±10° / 5 % / 5 % affine, strong colour jitter and 3 % warp.
DEMO_AUGMENT = {"rotation_deg": 3.0, "zoom": 0.02, "shift": 0.02, "flip": 0.5, "lightness": 0.04, "chroma": 2.0,
                "warp": 0.01}
SAVE_EVERY = 100_000         # the demo saves when it stops training
PREVIEW_EVERY = 100
STOP_GRACE_S = TRAIN_GRACE_S  # how long a stopped training job may take to save (the train kind's grace)
CLIPS_VERSION = 1
STAGES = 4                   # clips, extract, train, convert


class DemoError(FacepairError):
    """The demo cannot start or a stage failed."""


# ---- the project ---------------------------------------------------------------------------------

def clip_settings(frames: int, target_frames: int) -> dict:
    """What the clips depend on: a change means new clips, new faces and a new model."""
    return {"version": CLIPS_VERSION, "frames": int(frames), "target_frames": int(target_frames),
            "size": list(CLIP_SIZE), "fps": FPS, "seeds": SEEDS, "extract_size": EXTRACT_SIZE}


def is_demo(project) -> bool:
    return (project.root / MARKER).is_file()


def prepare(home: Path, name: str = NAME, fresh: bool = False) -> tuple[object, str]:
    """The demo project in `home` (created when absent; rebuilt with `fresh`) and a line saying which.

    Refuses a project of that name the demo did not make, and a demo project with a job running."""
    from core.jobs import control as jobs
    from core.project.projects import create_project, load_project, project_names
    from core.studio.removal import delete_project

    missing = [pkg for mod, pkg in (("skimage", "scikit-image"), ("matplotlib", "matplotlib"))
               if importlib.util.find_spec(mod) is None]
    if missing:
        raise DemoError(f"the demo's sample portraits ship with scikit-image and matplotlib, and "
                        f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: "
                        f"pip install {' '.join(missing)} (or run `make demo`, which installs them)")
    home = Path(home)
    if name in project_names(home):
        project = load_project(home, name)
        if not is_demo(project):
            raise DemoError(f"project {name!r} in {home} was not made by the demo; the demo leaves it alone: "
                            f"pass --name OTHER (or delete it with `facepair delete {name}`)")
        active = [j for j in jobs.project_jobs(project) if j.active]
        if active:
            j = active[0]
            raise DemoError(f"the demo project {name!r} has a {j.kind} job running ({j.id}): follow it with "
                            f"`facepair job log {j.id} -f`, or stop it with `facepair job cancel {j.id}`")
        if not fresh:
            return project, (f"reusing the demo project {name!r} ({project.root}): clips and faces are kept and "
                             f"the model resumes from its checkpoint; pass --fresh to rebuild it")
        delete_project(home, name)
        note = f"--fresh: deleted the demo project {name!r} and rebuilt it"
    else:
        note = f"created the demo project {name!r} in {home}"
    project = create_project(home, name, LABEL_A, LABEL_B, CONSENT, consent_by=list(CONSENT_BY))
    atomic_write_json(project.root / MARKER, {"created": project.created})
    return project, note


def clip_paths(project) -> dict[str, Path]:
    return {"a": project.sources_dir("a") / "astronaut-moving.mp4",
            "b": project.sources_dir("b") / "grace-hopper-moving.mp4",
            "target": project.root / "sources" / "target" / "astronaut-talking.mp4"}


def make_clips(project, frames: int, target_frames: int, say=print) -> bool:
    """Synthesize the clips unless they exist with these settings; record them as the sources.
    Returns True when clips were (re)made. Other settings → the old faces and model go too."""
    from core.media import synth
    from core.project.projects import add_sources

    want = clip_settings(frames, target_frames)
    marker = project.root / MARKER
    try:
        have = read_json(marker).get("clips")
    except (FileNotFoundError, ValueError):
        have = None
    paths = clip_paths(project)
    if have == want and all(p.is_file() for p in paths.values()):
        made = False
    else:
        if have is not None and have != want:
            say(f"the clip settings changed ({_diff(have, want)}): new clips, so the faces and the model "
                f"are rebuilt too")
            _clear_derived(project)
        project.sources = [s for s in project.sources if Path(s.path) not in (paths["a"], paths["b"])]
        project.save()
        w, h = CLIP_SIZE
        synth.portrait_clip("astronaut", paths["a"], frames=frames, size=(w, h), seed=SEEDS["a"], fps=FPS)
        synth.portrait_clip("hopper", paths["b"], frames=frames, size=(w, h), seed=SEEDS["b"], fps=FPS)
        synth.portrait_clip("astronaut", paths["target"], frames=target_frames, size=(w, h), seed=SEEDS["target"],
                            fps=FPS, audio=True)
        data = read_json(marker) if marker.is_file() else {}
        atomic_write_json(marker, {**data, "clips": want})
        made = True
    for side in ("a", "b"):
        if not any(Path(s.path) == paths[side] for s in project.sources_of(side)):
            add_sources(project, side, [paths[side]])
    return made


def _diff(have: dict, want: dict) -> str:
    return ", ".join(f"{k} {have.get(k)} → {v}" for k, v in want.items() if have.get(k) != v) or "format"


def _clear_derived(project) -> None:
    """Faces, alignments and model of the demo project (its own: nothing else is touched)."""
    for d in (project.faces_dir("a"), project.faces_dir("b"), project.alignments_dir, project.model_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True, exist_ok=True)


# ---- the model -----------------------------------------------------------------------------------

def demo_preset(name: str):
    """The preset the demo trains: `name`'s architecture and loss, DEMO_AUGMENT, TRAIN_LR."""
    import dataclasses

    from core.jaxmodels.presets import get_preset

    p = get_preset(name)
    return dataclasses.replace(p, augment=dataclasses.replace(p.augment, **DEMO_AUGMENT), lr=TRAIN_LR)


def model_preset(project, warn=None) -> tuple[int, dict] | None:
    """(step, meta) of the newest intact checkpoint of the project's model, or None."""
    _cpu_only()
    from core.train.job import checkpoint_preset

    return checkpoint_preset(project, warn)


def seed_model(project, preset, batch: int, seed: int = 0) -> None:
    """Write a new model's step-0 checkpoint with `preset`'s config (initial weights, fresh
    optimizer), as the train job writes its checkpoints: the job then resumes from it."""
    _cpu_only()
    import jax
    import numpy as np

    from core import __version__
    from core.jaxmodels.step import Trainer
    from core.system.clock import now_iso
    from core.train import model_io

    state = Trainer(preset.program_at(0), batch).init_state(seed)  # step 0: no late discriminator yet
    flat = model_io.flatten(jax.tree.map(np.asarray, state))
    meta = {"preset": preset.name, "preset_config": preset.to_json(), "resolution": preset.resolution, "step": 0,
            "batch": int(batch), "lr": float(preset.lr), "saved": now_iso(), "facepair": __version__,
            "written_by": "facepair demo (initial weights)"}
    manager = model_io.checkpoint_manager(model_io.checkpoint_dir(project))
    try:
        model_io.save_checkpoint(manager, 0, flat, meta)
    finally:
        manager.close()


def _cpu_only() -> None:
    """This process only reads or initialises models: keep JAX off the accelerator the training job
    needs (a GPU backend would reserve most of its memory). The environment, which the stage jobs
    inherit, is left alone."""
    import jax

    try:
        jax.config.update("jax_platforms", "cpu")
    except RuntimeError:  # a backend is already up in this process (tests running the job inline)
        pass


# ---- following a stage ---------------------------------------------------------------------------

class Stage:
    """One stage run as its own detached job, followed from the demo job: its progress, messages,
    metrics and previews are passed on; a cancel of the demo cancels it."""

    def __init__(self, ctx, number: int, total: int, kind: str, poll: float = 0.25):
        self.ctx, self.number, self.total, self.kind, self.poll = ctx, number, total, kind, poll
        self.job = None
        self.stopped_by_budget = False
        self._t0, self._budget_s, self._stop_sent = 0.0, None, None  # this run's clock (see _tick)

    @property
    def tag(self) -> str:
        return f"{self.number}/{self.total} {self.kind}"

    def run(self, args: dict, budget_s: float | None = None) -> tuple[object, float]:
        from core.jobs import control as jobs
        from core.jobs import follow

        t0 = self._t0 = time.monotonic()
        self._budget_s, self._stop_sent = budget_s, None
        self.job = job = jobs.start_job(self.ctx.project, self.kind, args)
        self.ctx.message(f"[{self.tag}] started job {job.id}")
        for ev in follow.events(job, self.poll, tick=self._tick):
            self._forward(ev)
        return jobs.load_job(job.dir), time.monotonic() - t0

    def _tick(self, current) -> None:
        """Between polls: a cancel of the demo cancels the stage; a spent budget stops training
        (SIGTERM, so it saves), and a stage still running STOP_GRACE_S later is cancelled."""
        from core.jobs import control as jobs

        ctx = self.ctx
        if ctx.cancelled:
            ctx.message(f"[{self.tag}] cancelling job {current.id}", level="warning")
            jobs.cancel_job(current)  # the stage kind's grace (a training stage saves first)
            raise JobCancelled()
        now, budget_s = time.monotonic(), self._budget_s
        if budget_s is not None and self._stop_sent is None and now - self._t0 >= budget_s:
            ctx.message(f"[{self.tag}] the training budget ({budget_s / 60:g} min) is spent: stopping "
                        f"training (the job saves its checkpoint)")
            self.stopped_by_budget = True
            _terminate(current)
            self._stop_sent = now
        if self._stop_sent is not None and now - self._stop_sent > STOP_GRACE_S:
            jobs.cancel_job(current, grace=5.0)

    def _forward(self, ev: dict) -> None:
        ctx, kind = self.ctx, ev.get("type")
        if kind == "progress":
            stage = f"{self.tag}: {ev['stage']}" if ev.get("stage") else self.tag
            extra = {k: ev[k] for k in ("fps", "eta_s", "info", "unit") if ev.get(k) is not None}
            ctx.progress(ev.get("done", 0), ev.get("total"), stage=stage, force=True, **extra)
        elif kind == "message":
            ctx.message(f"[{self.tag}] {ev.get('text', '')}", level=ev.get("level", "info"))
        elif kind == "metrics":
            ctx.metrics(**{k: v for k, v in ev.items() if k not in ("t", "type")})
        elif kind == "preview":
            ctx.emit("preview", **{k: v for k, v in ev.items() if k not in ("t", "type")})


def _terminate(job) -> None:
    """SIGTERM to the job's process group: the cooperative stop (the job saves, then ends)."""
    if not job.pid:
        return
    try:
        os.killpg(job.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(job.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _failed(stage: Stage, job) -> DemoError:
    return DemoError(f"the demo's {stage.kind} stage failed: {job.reason} (job {job.id}; log: {job.log_path})")


# ---- the job -------------------------------------------------------------------------------------

def run_job(ctx, preset: str = DEFAULT_PRESET, steps: int | None = None, minutes: float | None = None,
            frames: int = DEFAULT_FRAMES, target_frames: int = DEFAULT_TARGET_FRAMES, batch: int | None = TRAIN_BATCH,
            workers: int | None = None, poll: float = 0.25) -> dict:
    """The `demo` job kind (see the module notes). `steps` or `minutes` (default DEFAULT_MINUTES)
    is this run's training budget. Returns where the output is, each stage's time and the losses."""
    from core.jaxmodels.presets import get_preset

    project = ctx.project
    if not is_demo(project):
        raise DemoError(f"project {project.name!r} was not made by the demo (no {MARKER}); start the demo with "
                        f"`facepair demo`")
    get_preset(preset)  # a clear error for an unknown name, before any work
    if steps is not None and minutes is not None:
        raise DemoError("give the training budget as steps or as minutes, not both")
    if steps is not None and int(steps) < 1:
        raise DemoError(f"--steps must be at least 1, not {steps}")
    if minutes is not None and not float(minutes) > 0:
        raise DemoError(f"--minutes must be more than 0, not {minutes}")
    if steps is None and minutes is None:
        minutes = DEFAULT_MINUTES
    if int(frames) < 12 or int(target_frames) < 2:
        raise DemoError(f"the training clips need at least 12 frames and the target clip 2 "
                        f"(got {frames} and {target_frames})")
    times: dict[str, float] = {}
    jobs_run: dict[str, str] = {}
    times["clips"] = _clips_stage(ctx, project, int(frames), int(target_frames))
    ctx.check_cancelled()
    job, times["extract"], faces = _extract_stage(ctx, project, workers, poll)
    jobs_run["extract"] = job.id
    job, times["train"], start_step, budget, status = _train_stage(ctx, project, preset, steps, minutes, batch, poll)
    jobs_run["train"] = job.id
    target = clip_paths(project)["target"]
    job, times["convert"], conv, frame_png = _convert_stage(ctx, project, target, poll)
    jobs_run["convert"] = job.id
    result = {
        "project": project.name, "home": str(project.home), "output": conv.get("output"),
        "frame": str(frame_png) if frame_png else None, "target": str(target),
        "seconds": times, "total_seconds": round(sum(times.values()), 2), "jobs": jobs_run,
        "faces": faces, "resumed_from_step": start_step,
        "model": {"preset": status.get("preset"), "step": status.get("step"),
                  "steps_trained": int(status.get("step") or 0) - start_step,
                  "loss_a": status.get("loss_a"), "loss_b": status.get("loss_b"), "device": status.get("device"),
                  "budget": budget},
        "convert": {k: conv.get(k) for k in ("frames", "faces_found", "faces_swapped", "visible_label",
                                             "metadata_label", "c2pa", "c2pa_error", "fps")},
        "tui": open_hint(project.home),
    }
    ctx.emit("summary", **result)
    ctx.message(f"done: {result['output']}")
    return result


def _clips_stage(ctx, project, frames: int, target_frames: int) -> float:
    """1. the clips, made from the two stills (or reused); returns its seconds."""
    t0 = time.monotonic()
    ctx.progress(0, None, stage=f"1/{STAGES} clips", force=True)
    ctx.message(f"[1/{STAGES} clips] synthesizing head-motion clips from two public-domain stills "
                f"({frames} frames each, and a {target_frames}-frame target clip with audio)")
    made = make_clips(project, frames, target_frames, say=lambda t: ctx.message(f"[1/{STAGES} clips] {t}"))
    if not made:
        ctx.message(f"[1/{STAGES} clips] the clips are there already: reused")
    return round(time.monotonic() - t0, 2)


def _extract_stage(ctx, project, workers: int | None, poll: float):
    """2. `extract` on both sides: (its job, its seconds, the faces of each side)."""
    stage = Stage(ctx, 2, STAGES, "extract", poll)
    args = {"size": EXTRACT_SIZE}
    if workers:
        args["workers"] = int(workers)
    job, seconds = stage.run(args)
    if job.state == "cancelled":
        raise JobCancelled()
    if job.state != "succeeded":
        raise _failed(stage, job)
    faces = {s: project.face_count(s) for s in ("a", "b")}
    ctx.message(f"[2/{STAGES} extract] faces: {faces['a']} of {LABEL_A}, {faces['b']} of {LABEL_B}")
    return job, seconds, faces


def _model_to_train(ctx, project, preset: str, batch: int | None) -> int:
    """The step training resumes from: the demo's model of this preset, else a new one seeded here
    (another preset's model is removed first)."""
    found = model_preset(project, ctx.warning)
    if found is not None and found[1].get("preset") != preset:
        ctx.message(f"[3/{STAGES} train] the demo's model is a {found[1].get('preset')!r} model and this run asks "
                    f"for {preset!r}: starting a new {preset!r} model", level="warning")
        shutil.rmtree(project.model_dir, ignore_errors=True)
        project.model_dir.mkdir(parents=True, exist_ok=True)
        found = None
    if found is not None:
        return int(found[0])
    p = demo_preset(preset)
    seed_model(project, p, int(batch or p.batch))
    ctx.message(f"[3/{STAGES} train] new model: {preset!r} with the demo's lighter augmentation (the clips "
                f"already move the head) and learning rate {p.lr:g}")
    return 0


def _train_stage(ctx, project, preset: str, steps: int | None, minutes: float | None, batch: int | None,
                 poll: float):
    """3. `train` for the budget: (its job, its seconds, the step it resumed from, the budget in
    words, the model's status). A stop by the budget or by hand still converts what was saved."""
    from core.train import model_io

    t0 = time.monotonic()
    start_step = _model_to_train(ctx, project, preset, batch)
    targs = {"preset": preset, "save_every": SAVE_EVERY, "preview_every": PREVIEW_EVERY}
    if batch:
        targs["batch"] = int(batch)
    if steps is not None:
        targs["steps"] = start_step + int(steps)
        budget = f"{int(steps)} steps"
    else:
        budget = f"{float(minutes):g} minutes"
    ctx.message(f"[3/{STAGES} train] " + (f"resuming the model at step {start_step}; " if start_step else "")
                + f"training {preset!r} for {budget}")
    stage = Stage(ctx, 3, STAGES, "train", poll)
    seeding = time.monotonic() - t0
    job, seconds = stage.run(targs, budget_s=None if minutes is None else float(minutes) * 60)
    if job.state == "failed":
        raise _failed(stage, job)
    if job.state == "cancelled" and not stage.stopped_by_budget:
        ctx.message(f"[3/{STAGES} train] training was stopped by hand (job {job.id}); converting with the "
                    f"model saved so far", level="warning")
    status = model_io.read_status(project) or {}
    if not status.get("step"):
        raise DemoError(f"training saved no model (job {job.id}, {job.state}: {job.reason}); see {job.log_path}")
    return job, round(seconds + seeding, 2), start_step, budget, status


def _convert_stage(ctx, project, target: Path, poll: float):
    """4. `convert` the target clip, and the side-by-side frame: (its job, its seconds, its result,
    the frame's PNG or None)."""
    stage = Stage(ctx, 4, STAGES, "convert", poll)
    job, seconds = stage.run({"input": str(target), "faces": "match"})
    if job.state == "cancelled":
        raise JobCancelled()
    if job.state != "succeeded":
        raise _failed(stage, job)
    conv = job.result or {}
    if not conv.get("faces_swapped"):
        ctx.warning(f"the conversion swapped no face ({conv.get('faces_found', 0)} found): see job {job.id}")
    frame_png = ctx.dir / "demo-frame.png"
    try:
        write_frame(project, target, Path(conv["output"]), frame_png)
    except FacepairError as e:
        ctx.warning(f"could not write the side-by-side frame: {e}")
        frame_png = None
    return job, seconds, conv, frame_png


def open_hint(home: Path) -> str:
    """The command that opens the TUI on this home."""
    from core.project.projects import home_dir

    default = home_dir(None)
    return "facepair" if Path(home).resolve() == default else f"facepair --home {home}"


def write_frame(project, original: Path, converted: Path, path: Path, position: float = 0.5) -> Path:
    """A PNG of one frame, original | converted side by side (labelled as synthetic like any output)."""
    import numpy as np

    from core.media import label
    from core.media import read as media
    from core.media import write as video_out
    from core.media.probe import probe

    info = probe(converted)
    n = max(1, int(info.frames or 1))
    i = min(n - 1, int(round(position * (n - 1))))
    a = next(iter(media.iter_frames(original, start=i, stop=i + 1)), None)
    b = next(iter(media.iter_frames(converted, start=i, stop=i + 1)), None)
    if a is None or b is None:
        raise DemoError(f"frame {i} of {original.name} or {converted.name} could not be decoded")
    gap = np.full((a.image.shape[0], 4, 3), 255, np.uint8)
    return video_out.write_image(path, np.concatenate([a.image, gap, b.image], axis=1),
                                 label.metadata(project.name))
