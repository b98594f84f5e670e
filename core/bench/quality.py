"""`facepair bench quality`: the real pipeline on pairs of real clips, at a fixed recipe, measured.

For each pair (A's clip, B's clip) it makes a project `bench-quality-A-B` (a consent statement
saying it is a benchmark, the two clips as sources; a project of that name the benchmark did not
make is never touched, one it made is rebuilt), then the `bench-quality` job runs each stage as
its own job, as `facepair demo` does (core.demo.job.Stage passes their progress on):

1. `extract` both clips;
2. `train` the recipe's preset for its budget (steps, or minutes of the training job), batch and
   seed, with any extra train options (`Recipe.train`) passed through to the train job; then each
   of `Recipe.then` resumes the model to its own `steps` with its own options (DeepFaceLab's way of
   turning on a GAN or learning-rate dropout once the faces are recognisable: one stage each);
3. `convert` A's clip (its first `frames` frames) to B (a-to-b);
4. `convert` the same frames through A's own decoder (a-to-a): the self-swap control;
5. `eval` the conversion against A's clip, with the control (core/evaluate/job.py).

With `start_from` (the `--home` of an earlier run of the same recipe) a pair's project starts as a
copy of that run's — its faces and its model at step `steps` — and only the resumes of `then` train:
several ends of training are measured against one beginning without training it again (a resume
continues the model exactly: the step's randomness is a function of the step).

Its result is one *row*: every figure of docs/quality.md, the wall time of each stage, the device.
`run_rows` writes the run (machine, recipe, rows) to a JSON file that `markdown` turns into the
docs table. A recipe is data (`Recipe`, JSON), so a later model option is one more `train` key.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import FacepairError, JobCancelled
from core.jobs import kinds as jobkinds
from core.system.atomic import atomic_write_json

KIND = "bench-quality"
MARKER = "bench-quality.json"
PREFIX = "bench-quality"
DEFAULT_PAIRS = (("talking/d18.mp4", "talking/d19.mp4"), ("talking/d3.mp4", "talking/d6.mp4"))
# Train arguments the recipe sets itself (not through `train`), and those the bench owns.
RECIPE_KEYS = ("preset", "steps", "batch", "seed")
OWNED_TRAIN_KEYS = ("save_every", "preview_every", "coordinator", "num_processes", "process_id")
SAVE_EVERY = 1_000_000  # the model is saved when training ends
PREVIEW_EVERY = 1_000_000
STAGES = 5  # extract, train, convert, the self-swap control, eval
ANGLES = ("yaw", "pitch", "roll")
CONSENT = ("Benchmark only: `facepair bench quality` trains on {a} (person A) and {b} (person B) and converts "
           "A's clip to measure swap quality (identity, expression, pose, stability, detail, seam). The clips are "
           "test media ({where}); what is made from them is for measuring only and is never published.")


class BenchQualityError(FacepairError):
    """The quality benchmark cannot run (a bad recipe, a missing clip, a stage failed)."""


# ---- the recipe ----------------------------------------------------------------------------------

@dataclass
class Recipe:
    """Everything a run depends on besides the clips (JSON: `to_json` / `from_json`)."""

    preset: str = "lite"
    steps: int | None = 4600  # lite: 3,600 plain steps, then 1,000 with its discriminator (~15 min on 2 cores)
    minutes: float | None = None
    batch: int = 16
    seed: int = 0
    frames: int | None = None  # A frames converted and measured (None: the whole clip)
    identity_faces: int = 24  # of those, frames whose faces get dlib descriptors
    train: dict = field(default_factory=dict)  # extra train job options, passed through
    extract: dict = field(default_factory=dict)  # extra extract job options
    convert: dict = field(default_factory=dict)  # extra convert job options (both conversions)
    then: list = field(default_factory=list)  # resumes: train options, each with the `steps` it trains to
    start_from: str | None = None  # the --home of an earlier run whose model at `steps` the resumes start from

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Recipe:
        if not isinstance(data, dict):
            raise BenchQualityError(f"a recipe is a JSON object, not {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BenchQualityError(f"unknown recipe keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        data = dict(data)
        if data.get("minutes") is not None and "steps" not in data:
            data["steps"] = None  # a budget in minutes replaces the default steps
        return cls(**data).checked()

    def checked(self) -> Recipe:
        """This recipe, validated (raises BenchQualityError naming what is wrong)."""
        from core.jaxmodels.presets import get_preset

        try:
            get_preset(self.preset)
        except Exception as e:  # noqa: BLE001 - the preset module's own message says which exist
            raise BenchQualityError(str(e)) from None
        if (self.steps is None) == (self.minutes is None):
            raise BenchQualityError("a recipe trains for steps or for minutes: give exactly one")
        if self.steps is not None and int(self.steps) < 1:
            raise BenchQualityError(f"steps must be at least 1, not {self.steps}")
        if self.minutes is not None and not float(self.minutes) > 0:
            raise BenchQualityError(f"minutes must be more than 0, not {self.minutes}")
        if int(self.batch) < 1:
            raise BenchQualityError(f"batch must be at least 1, not {self.batch}")
        if self.frames is not None and int(self.frames) < 3:
            raise BenchQualityError(f"frames must be at least 3 (the stability figure needs three), not {self.frames}")
        if int(self.identity_faces) < 1:
            raise BenchQualityError(f"identity_faces must be at least 1, not {self.identity_faces}")
        for name, owned in (("train", RECIPE_KEYS + OWNED_TRAIN_KEYS), ("extract", ()),
                            ("convert", ("input", "output", "start", "end", "swap"))):
            opts = getattr(self, name)
            if not isinstance(opts, dict):
                raise BenchQualityError(f"recipe {name!r} options are a JSON object, not {opts!r}")
            accepted = list(jobkinds.spec(name).by_name)  # the kind's declared options
            for key in opts:
                if key in owned:
                    where = "its own recipe field" if key in RECIPE_KEYS else "the benchmark"
                    raise BenchQualityError(f"{name} option {key!r} is set by {where}, not through {name} options")
                if key not in accepted:
                    raise BenchQualityError(f"the {name} job has no option {key!r}; it takes: "
                                            f"{', '.join(k for k in accepted if k not in owned)}")
        self._check_then()
        if self.start_from is not None:
            if self.steps is None or not self.then:
                raise BenchQualityError("a start from an earlier run's model takes the step to start at (--steps) "
                                        "and resumes that train on from it (--then)")
            self.start_from = str(Path(self.start_from).expanduser().resolve())
        return self

    def _check_then(self) -> None:
        """Each resume trains on to more steps than the run before it, with train options."""
        if not isinstance(self.then, list):
            raise BenchQualityError(f"recipe 'then' is a list of resumes, not {self.then!r}")
        if self.then and self.steps is None:
            raise BenchQualityError("resumes ('then') follow a budget in steps, not minutes")
        accepted, reached = jobkinds.spec("train").by_name, self.steps
        for n, phase in enumerate(self.then, 1):
            if not isinstance(phase, dict) or not isinstance(phase.get("steps"), int):
                raise BenchQualityError(f"resume {n} is a JSON object with the integer 'steps' it trains to, "
                                        f"not {phase!r}")
            if phase["steps"] <= reached:
                raise BenchQualityError(f"resume {n} trains to step {phase['steps']}, but the run before it "
                                        f"already reaches step {reached}")
            reached = phase["steps"]
            refused = tuple(k for k in RECIPE_KEYS + OWNED_TRAIN_KEYS if k != "steps")
            for key in phase:
                if key in refused or key not in accepted:
                    raise BenchQualityError(f"resume {n} cannot set {key!r}: a resume takes the train job's "
                                            f"options except {', '.join(refused)}")

    @property
    def stages(self) -> int:
        return STAGES + len(self.then) - (2 if self.start_from else 0)  # a start skips extract and train

    def describe(self) -> str:
        budget = f"{self.steps} steps" if self.steps is not None else f"{self.minutes:g} min"
        extra = "".join(f", {k}={v}" for k, v in sorted(self.train.items()))
        for phase in self.then:
            opts = "".join(f", {k}={v}" for k, v in sorted(phase.items()) if k != "steps")
            extra += f"; then to step {phase['steps']}{opts}"
        start = f"; from the model of {self.start_from} at step {self.steps}" if self.start_from else ""
        return f"{self.preset}, {budget}, batch {self.batch}, seed {self.seed}{extra}{start}"


def parse_option(text: str) -> tuple[str, object]:
    """`key=value` → (key, value), the value read as JSON when it is JSON (3e-4, true, "x"), else text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise BenchQualityError(f"an option is key=value, not {text!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip().replace("-", "_"), parsed


def load_recipe(text: str) -> dict:
    """A recipe's JSON from a file path or the JSON text itself."""
    path = Path(text).expanduser()
    raw = path.read_text() if not text.lstrip().startswith("{") and path.is_file() else text
    try:
        return json.loads(raw)
    except ValueError as e:
        raise BenchQualityError(f"--recipe {text!r} is neither a JSON file nor JSON: {e}") from None


# ---- the pairs and their projects ----------------------------------------------------------------

def shared_data() -> Path:
    """../shared/data beside the checkout (where the default clips are)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def default_pairs(data: Path | None = None) -> list[tuple[Path, Path]]:
    data = Path(data) if data is not None else shared_data()
    pairs = [(data / a, data / b) for a, b in DEFAULT_PAIRS]
    missing = [str(p) for pair in pairs for p in pair if not p.is_file()]
    if missing:
        raise BenchQualityError(f"the default clips are missing ({', '.join(missing)}): pass --pair A.mp4 B.mp4, "
                                f"or --data DIR holding talking/d18.mp4 … (see ../shared/data/README.md)")
    return pairs


def project_name(a: Path, b: Path) -> str:
    def stem(p: Path) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", Path(p).stem).strip("-").lower()[:24] or "clip"
    return f"{PREFIX}-{stem(a)}-{stem(b)}"


def prepare(home: Path, a: Path, b: Path, recipe: Recipe):
    """A fresh benchmark project for the pair (rebuilt when the benchmark made it; refused when not)."""
    from core.jobs import control as jobs
    from core.media.probe import probe
    from core.project.projects import add_sources, create_project, load_project, project_names
    from core.studio.removal import delete_project

    a, b = Path(a).expanduser().resolve(), Path(b).expanduser().resolve()
    for p in (a, b):
        if not p.is_file():
            raise BenchQualityError(f"{p}: no such video")
        if probe(p).kind != "video":
            raise BenchQualityError(f"{p} is not a video: the quality benchmark converts A's clip")
    if a == b:
        raise BenchQualityError(f"A and B are the same clip ({a})")
    name = project_name(a, b)
    home = Path(home)
    if name in project_names(home):
        old = load_project(home, name)
        if not (old.root / MARKER).is_file():
            raise BenchQualityError(f"project {name!r} in {home} was not made by the quality benchmark; it is left "
                                    f"alone: delete it or use another --home")
        active = [j for j in jobs.project_jobs(old) if j.active]
        if active:
            raise BenchQualityError(f"project {name!r} has a {active[0].kind} job running ({active[0].id}): wait "
                                    f"for it or `facepair job cancel {active[0].id}`")
        delete_project(home, name)
    where = f"{a.parent.name}/{a.name}, {b.parent.name}/{b.name}"
    project = create_project(home, name, a.stem, b.stem, CONSENT.format(a=a.name, b=b.name, where=where),
                             consent_by=["facepair bench quality (benchmark; not a consent by the people shown)"])
    atomic_write_json(project.root / MARKER, {"a": str(a), "b": str(b), "recipe": recipe.to_json(),
                                              "created": project.created})
    add_sources(project, "a", [a])
    add_sources(project, "b", [b])
    if recipe.start_from:
        project = start_from(home, project, recipe)
    return project


# The recipe fields a start from an earlier run's model must share with that run.
SHARED_WITH_START = ("preset", "batch", "seed", "train", "extract")


def start_from(home: Path, project, recipe: Recipe):
    """The new project as a copy of the earlier run's (its faces, alignments and model), the model
    cut back to its checkpoint at `recipe.steps` (later ones removed); refused when that run did not
    train the same way up to that step."""
    import shutil

    from core.project.projects import load_project
    from core.system.atomic import read_json
    from core.train import model_io

    src = Path(recipe.start_from) / project.root.name
    if not (src / MARKER).is_file():
        raise BenchQualityError(f"{src}: no project of a quality benchmark of this pair to start from (--start-from "
                                f"is the --home of the earlier run)")
    earlier = Recipe(**read_json(src / MARKER)["recipe"])
    for key in SHARED_WITH_START:
        if getattr(earlier, key) != getattr(recipe, key):
            raise BenchQualityError(f"the earlier run in {recipe.start_from} trained with {key} "
                                    f"{getattr(earlier, key)!r}, this recipe with {getattr(recipe, key)!r}: a start "
                                    f"from its model shares its {', '.join(SHARED_WITH_START)}")
    if earlier.steps is None or earlier.steps < recipe.steps:
        raise BenchQualityError(f"the earlier run's first training ended at step {earlier.steps}: start at a step "
                                f"it reached (--steps {earlier.steps} or fewer)")
    kept = sorted(int(p.name) for p in model_io.checkpoint_dir(load_project(src.parent, src.name)).iterdir()
                  if p.name.isdigit())
    if recipe.steps not in kept:
        raise BenchQualityError(f"the earlier run kept its model at steps {', '.join(map(str, kept)) or 'none'}, "
                                f"not at {recipe.steps}: start at one of those")
    marker = read_json(project.root / MARKER)
    shutil.rmtree(project.root)
    shutil.copytree(src, project.root, symlinks=True, ignore=shutil.ignore_patterns("runs", "output"))
    (project.root / "runs").mkdir()
    atomic_write_json(project.root / MARKER, {**marker, "started_from": str(src), "step": recipe.steps})
    copied = load_project(home, project.name)
    for step in kept:
        if step > recipe.steps:
            shutil.rmtree(model_io.checkpoint_dir(copied) / str(step))
    return copied


# ---- the job -------------------------------------------------------------------------------------

def _stage(ctx, poll: float, times: dict, job_ids: dict, number: int, total: int, kind: str, args: dict,
           label: str | None = None, budget_s: float | None = None):
    """Run stage `number` as its own job, followed (core.demo.job.Stage); its seconds and job id
    go into `times` and `job_ids`. A stage that failed, or was cancelled other than by the
    training budget, ends the benchmark."""
    from core.demo.job import Stage

    s = Stage(ctx, number, total, kind, poll)
    job, seconds = s.run(args, budget_s=budget_s)
    key = label or kind
    times[key] = round(seconds, 2)
    job_ids[key] = job.id
    if job.state == "cancelled" and not (kind == "train" and s.stopped_by_budget):
        if ctx.cancelled:
            raise JobCancelled()
        raise BenchQualityError(f"the {key} stage was cancelled (job {job.id})")
    if job.state not in ("succeeded", "cancelled"):
        raise BenchQualityError(f"the {key} stage failed: {job.reason} (job {job.id}; log: {job.log_path})")
    ctx.check_cancelled()
    return job


def run_job(ctx, recipe: dict, poll: float = 0.25) -> dict:
    """The `bench-quality` job kind: the five stages (module notes) in a project `prepare` made."""
    from core.media.probe import probe
    from core.train import model_io

    project = ctx.project
    if not (project.root / MARKER).is_file():
        raise BenchQualityError(f"project {project.name!r} was not made by the quality benchmark (no {MARKER})")
    r = Recipe.from_json(recipe)
    a = Path(project.sources_of("a")[0].path)
    b = Path(project.sources_of("b")[0].path)
    info = probe(a)
    fps = info.fps or 25.0
    frames = int(r.frames) if r.frames else int(info.frames or 0)
    if info.frames:
        frames = min(frames, int(info.frames))
    times: dict[str, float] = {}
    job_ids: dict[str, str] = {}
    ctx.message(f"quality benchmark: {a.name} (A) → {b.name} (B); recipe {r.describe()}; {frames} frames of "
                f"{a.name} converted and measured")

    def stage(number: int, kind: str, args: dict, label: str | None = None, budget_s: float | None = None):
        return _stage(ctx, poll, times, job_ids, number, r.stages, kind, args, label, budget_s)

    first = 0 if r.start_from else 2  # the stages before the resumes
    if r.start_from:
        ctx.message(f"starts from the model of {r.start_from} at step {r.steps} (its faces and checkpoint)")
    else:
        stage(1, "extract", dict(r.extract))
    faces = {s: project.face_count(s) for s in ("a", "b")}
    counts = f"faces: {faces['a']} of {a.stem}, {faces['b']} of {b.stem}"
    ctx.message(f"[1/{r.stages} extract] {counts}" if first else counts)

    base = {"preset": r.preset, "batch": int(r.batch), "seed": int(r.seed), "save_every": SAVE_EVERY,
            "preview_every": PREVIEW_EVERY}
    targs = {**base, **r.train}
    if r.steps is not None:
        targs["steps"] = int(r.steps)
    train = None
    if not r.start_from:
        train = stage(2, "train", targs, budget_s=None if r.minutes is None else float(r.minutes) * 60)
    for n, phase in enumerate(r.then, 2):  # a resume: the checkpoint keeps the earlier options
        train = stage(first + n - 1, "train", {**base, **phase}, label=f"train {n}")
    status = model_io.read_status(project) or {}
    if not status.get("step"):
        raise BenchQualityError(f"training saved no model (job {train.id}: {train.reason})")

    end = frames / fps  # convert takes times; eval compares the first `frames` frames
    cargs = {"input": str(a), "end": end, "faces": "match", **r.convert}
    k = first + len(r.then)
    swapped = stage(k + 1, "convert", cargs).result or {}
    control = stage(k + 2, "convert", {**cargs, "swap": "a-to-a"}, label="control").result or {}
    if not swapped.get("faces_swapped"):
        raise BenchQualityError(f"the conversion swapped no face ({swapped.get('faces_found', 0)} found): see job "
                                f"{job_ids['convert']}")
    ev = stage(k + 3, "eval", {"input": swapped["output"], "original": str(a), "frames": frames,
                           "identity_faces": int(r.identity_faces), "control": control.get("output")}).result or {}
    row = make_row(ev, r, a, b, faces, status, times, job_ids)
    ctx.emit("summary", **row)
    ctx.message(f"identity {_pct(row['identity_b'])} as B, {_pct(row['identity_a'])} still A; detail at 64 px "
                f"{_pct(row['detail_64'])}; {sum(times.values()):.0f} s in all")
    return row


def make_row(ev: dict, recipe: Recipe, a: Path, b: Path, faces: dict, status: dict, times: dict,
             job_ids: dict) -> dict:
    """One flat row of figures (docs/quality.md), with the full evaluation kept under `eval`."""
    i, e, t = ev["identity"], ev["expression"], ev["temporal"]
    p, d, s, c = ev["pose"], ev["detail"], ev["seam"], ev.get("control") or {}
    return {
        "pair": f"{a.stem} → {b.stem}", "a": str(a), "b": str(b), "recipe": recipe.to_json(),
        "project": ev.get("project"), "frames": ev.get("frames"), "faces": ev.get("faces"),
        "faces_extracted": faces, "identity_faces": i["faces"],
        "identity_b": i["b_share"], "identity_a": i["a_share"],
        "distance_b": i["b_distance"], "distance_a": i["a_distance"],
        "expression": e["mean"], "expression_tracking": e.get("tracking_error"),
        "expression_offset": e.get("offset"), "control_expression": c.get("expression"),
        "pose_yaw": p["yaw_error"], "pose_pitch": p["pitch_error"], "pose_roll": p["roll_error"],
        **{f"pose_tracking_{k}": p.get(f"{k}_tracking_error") for k in ANGLES},
        **{f"pose_offset_{k}": p.get(f"{k}_offset") for k in ANGLES},
        **{f"control_pose_{k}": (c.get("pose") or {}).get(f"{k}_error") for k in ANGLES},
        "stability": t["ratio"], "motion_ratio": t["motion_ratio"],
        "detail_64": d["64"]["ratio"], "detail_128": d["128"]["ratio"],
        "detail_64_ceiling": d["64"]["ceiling"], "detail_128_ceiling": d["128"]["ceiling"],
        "seam": s["delta_e_output"], "seam_original": s["delta_e_input"], "seam_excess": s["excess"],
        "control_ssim": c.get("ssim"), "control_detail_64": (c.get("detail") or {}).get("64"),
        "control_detail_128": (c.get("detail") or {}).get("128"),
        "started_from": {"home": recipe.start_from, "step": recipe.steps} if recipe.start_from else None,
        "model": {"preset": status.get("preset"), "resolution": status.get("resolution"), "step": status.get("step"),
                  "loss_a": status.get("loss_a"), "loss_b": status.get("loss_b")},
        "device": str(status.get("device") or "").removeprefix("trains on ") or None,
        "seconds": {**times, "total": round(sum(times.values()), 2)},
        "jobs": job_ids,
        "eval": ev,
    }


# ---- a run: rows, the file, the table ------------------------------------------------------------

def result_document(rows: list[dict], recipe: Recipe, command: str, started: float) -> dict:
    from core.bench import report as bench

    return {"benchmark": "quality", "command": command, "recipe": recipe.to_json(),
            "machine": bench.machine(with_devices=False), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                   time.gmtime(started)),
            "seconds": round(time.time() - started, 1), "rows": rows}


def default_output(home: Path) -> Path:
    return Path(home) / "bench-results" / f"quality-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"


def write_document(path: Path, doc: dict) -> Path:
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, doc)
    return path


COLUMNS = (
    ("pair", "pair", str),
    ("identity_b", "as B", lambda v: _pct(v)),
    ("identity_a", "still A", lambda v: _pct(v)),
    ("expression", "expression % IOD", lambda v: _num(v, 2)),
    ("expression_tracking", "expression tracking % IOD", lambda v: _num(v, 2)),
    ("pose", "pose error yaw/pitch/roll °", None),
    ("pose_tracking", "pose tracking °", None),
    ("stability", "stability ×", lambda v: _num(v, 2)),
    ("detail_64", "detail 64 px", lambda v: _pct(v)),
    ("detail_128", "detail 128 px", lambda v: _pct(v)),
    ("seam", "seam ΔE (original)", None),
    ("control", "self-swap SSIM / detail 64", None),
    ("control_expression", "self-swap expression % IOD", lambda v: _num(v, 2)),
    ("control_pose", "self-swap pose °", None),
    ("time", "time extract/train/convert/eval", None),
    ("device", "device", lambda v: str(v or "–")),
)


def cells(row: dict) -> list[str]:
    out = []
    for key, _, fmt in COLUMNS:
        if key in ("pose", "pose_tracking", "control_pose"):
            out.append("/".join(_num(row.get(f"{key}_{k}"), 1) for k in ANGLES))
        elif key == "seam":
            out.append(f"{_num(row.get('seam'), 1)} ({_num(row.get('seam_original'), 1)})")
        elif key == "control":
            out.append(f"{_num(row.get('control_ssim'), 3)} / {_pct(row.get('control_detail_64'))}")
        elif key == "time":
            sec = row.get("seconds") or {}
            conv = (sec.get("convert") or 0) + (sec.get("control") or 0)
            train = sum(v or 0 for k, v in sec.items() if k == "train" or k.startswith("train ")) or None
            out.append(" / ".join(_dur(x) for x in (sec.get("extract"), train, conv, sec.get("eval"))))
        else:
            out.append(fmt(row.get(key)))
    return out


def headers() -> list[str]:
    return [h for _, h, _ in COLUMNS]


def markdown(doc: dict) -> str:
    """The docs table of a run's JSON document (the command and recipe above it)."""
    head = headers()
    lines = [f"`{doc.get('command', '')}`", "",
             f"Recipe: {Recipe(**doc['recipe']).describe()}; started {doc.get('started')}, "
             f"{_dur(doc.get('seconds'))} in all; {doc.get('machine', {}).get('cpu', '?')} "
             f"({doc.get('machine', {}).get('cores', '?')} cores).", "",
             "| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in doc.get("rows", [])]
    return "\n".join(lines)


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _num(x, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _dur(seconds) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    return f"{seconds:.0f} s" if seconds < 90 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"

