"""One declared spec per job kind (core/jobs/spec.py): the command line's `--help`, its parsed
defaults, the TUI's dialogs, core's check before a job starts and the cancel grace all come from it."""

from __future__ import annotations

import inspect
import re
import signal

import pytest

from core.jobs import control as jobs
from core.jobs import kinds as jobkinds
from core.jobs.spec import KindSpec, Option, OptionError, validate
from core.project.projects import now_iso
from tui.cli.main import build_parser

# command line → the kind its job runs, and the arguments it needs to parse at all
COMMANDS = {
    "extract": ("extract", ["p"]),
    "train": ("train", ["p"]),
    "convert": ("convert", ["p", "-i", "x.mp4"]),
    "preview": ("preview", ["p", "-i", "x.mp4"]),
    "fit": ("fit", ["p"]),
    "eval": ("eval", ["p", "-i", "x.mp4"]),
    "demo": ("demo", []),
    "selftest": ("selftest", ["p"]),
}


def help_entries(command: str, capsys, monkeypatch) -> dict[str, str]:
    """`facepair COMMAND --help` as flag → its help text (whitespace made single)."""
    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    entries: dict[str, str] = {}
    current = None
    for line in capsys.readouterr().out.splitlines():
        m = re.match(r"^  (-\S.*?)(?:\s{2,}(.*))?$", line)
        if m:
            current = m.group(1)
            entries[current] = m.group(2) or ""
        elif current is not None and line.startswith("    "):
            entries[current] = (entries[current] + " " + line.strip()).strip()
        else:
            current = None
    return {flag.split()[0].rstrip(","): text for flag, text in entries.items()}


def mentions(text: str) -> list[str]:
    """The defaults a help text states: 'default 20', 'default: 60 px…', 'hog (default)…'."""
    return re.findall(r"\bdefault:? ([\w.\-]+)", text) + re.findall(r"([\w.\-]+) \(default[),]", text)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_default_printed_by_help_is_the_specs(command, capsys, monkeypatch):
    spec = jobkinds.spec(COMMANDS[command][0])
    helps = help_entries(command, capsys, monkeypatch)
    for o in spec.options:
        if o.cli_flag is None or bool in o.types:
            continue
        text = helps[o.cli_flag]
        said = mentions(text)
        if "{default}" in o.help:
            assert said, (o.cli_flag, text)
        if o.default is not None or o.auto:
            for word in said:
                assert o.default_text().startswith(word), (command, o.cli_flag, word, o.default_text())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_parsed_defaults_are_the_specs(command):
    kind, needed = COMMANDS[command]
    ns = build_parser().parse_args([command, *needed])
    for o in jobkinds.spec(kind).options:
        if o.cli_flag is not None and not o.required:
            assert getattr(ns, o.name) == o.default, (command, o.name)


def test_extract_help_says_the_smallest_face_is_60_px(capsys, monkeypatch):
    text = help_entries("extract", capsys, monkeypatch)["--min-face"]
    assert "default: 60 px" in text and "40 px" not in text


# ---- the specs agree with the job functions ------------------------------------------------------

def test_every_registered_kind_declares_a_spec():
    assert set(jobkinds.SPECS) == set(jobkinds.KINDS)
    for kind in jobkinds.KINDS:
        assert jobkinds.spec(kind).kind == kind


@pytest.mark.parametrize("kind", sorted(jobkinds.KINDS))
def test_each_spec_declares_its_job_functions_arguments_and_defaults(kind):
    try:
        func = jobkinds.resolve(kind)
    except ImportError as e:
        pytest.skip(f"{kind} is not part of this build: {e}")
    params = list(inspect.signature(func).parameters.values())[1:]  # after ctx
    spec = jobkinds.spec(kind)
    assert sorted(p.name for p in params) == sorted(spec.by_name)
    for p in params:
        o = spec.option(p.name)
        if p.default is inspect.Parameter.empty:
            assert o.required, (kind, p.name)
        else:
            assert p.default == o.default and not o.required, (kind, p.name, p.default, o.default)


def test_what_an_unset_default_means_is_what_the_job_does():
    pipeline = pytest.importorskip("core.extract.pipeline")
    from core.extract import finder
    from core.extract import options as ex

    assert finder.auto_min_face(640, 480) == ex.MIN_FACE_AUTO
    assert pipeline.SIZE_RANGE == ex.SIZE_RANGE
    train = pytest.importorskip("core.train.job")
    from core.train import options as tr

    assert (train.DEFAULT_SAVE_EVERY, train.DEFAULT_PREVIEW_EVERY) == (tr.SAVE_EVERY_DEFAULT, tr.PREVIEW_EVERY_DEFAULT)
    from core.demo import job as demo
    from core.demo import options as de

    assert demo.DEFAULT_MINUTES == de.MINUTES_DEFAULT and demo.STOP_GRACE_S == tr.GRACE_S
    fit = pytest.importorskip("core.fit.job")
    from core.fit import options as fo

    assert fit.MAX_FRAMES == fo.MAX_FRAMES
    convert = pytest.importorskip("core.convert.plan")
    from core.convert import merge
    from core.convert import options as co

    assert convert.DIRECTIONS == co.DIRECTIONS
    for name, methods in (("color", merge.COLOR_METHODS), ("blend", merge.BLEND_METHODS),
                          ("mask", merge.MASK_METHODS)):
        assert set(co.CONVERT.option(name).choices) == set(methods)


# ---- validate ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "args", "words"), [
    ("extract", {"size": 2000}, "--size 2000 is out of range: use 64..1024 pixels"),
    ("extract", {"min_face": 10}, "--min-face 10 is too small"),
    ("extract", {"side": "c"}, "--side must be one of a, b, both"),
    ("extract", {"every": "2"}, "--every must be a whole number"),
    ("extract", {"blur": True}, "--blur must be a number"),
    ("extract", {"smooth": 1}, "smooth must be true or false"),
    ("extract", {"sizes": 64}, "no option 'sizes'"),
    ("train", {"steps": 0}, "--steps must be at least 1, not 0"),
    ("train", {"lr": 0.0}, "--lr must be more than 0"),
    ("train", {"lr": float("nan")}, "--lr must be a finite number"),
    ("convert", {"input": "x.mp4", "crf": 70}, "--crf must be 0–51"),
    ("convert", {"input": "x.mp4", "erode": -3}, "--erode must be at least 0"),
    ("convert", {"input": "x.mp4", "swap": "a-to-c"}, "--swap must be one of"),
    ("convert", {"swap": "a-to-b"}, "needs --input"),
    ("fit", {"frames": 5000}, "--frames 5000 is out of range: sample 1–2000 frames"),
    ("demo", {"minutes": -1}, "--minutes must be more than 0"),
    ("bench-quality", {}, "needs recipe"),
    ("selftest", {"seconds": "a while"}, "--seconds must be a number"),
])
def test_validate_refuses_naming_the_option(kind, args, words):
    with pytest.raises(OptionError) as e:
        validate(jobkinds.spec(kind), args)
    assert words in str(e.value)


def test_validate_fills_the_defaults_and_keeps_what_is_given():
    out = validate(jobkinds.spec("extract"), {"size": 64, "side": "a", "reference": ["/x.png"]})
    assert out["size"] == 64 and out["side"] == "a" and out["reference"] == ["/x.png"]
    assert out["blur"] == 20.0 and out["min_face"] is None and out["identity"] is True
    assert validate(jobkinds.spec("convert"), {"input": "x", "end": 2.5})["end"] == 2.5  # seconds or text
    assert validate(jobkinds.spec("train"), {"lr": 1})["lr"] == 1.0  # a whole number is a number


def test_start_job_refuses_before_any_folder_or_lock(project):
    with pytest.raises(OptionError, match="--steps must be a whole number"):
        jobs.start_job(project, "selftest", {"steps": "many"})
    with pytest.raises(OptionError, match="--steps must be at least 1"):
        jobs.start_job(project, "train", {"steps": 0})
    assert not list(project.runs_dir.iterdir())
    assert not list(project.root.glob("**/*.lock"))


def test_a_kind_registered_without_a_spec_takes_its_arguments_as_they_are(monkeypatch):
    monkeypatch.setitem(jobkinds.KINDS, "anything", "core.jobs.selftest:run")
    assert jobkinds.spec("anything") is None and jobkinds.check_args("anything", {"x": 1}) == {"x": 1}
    assert jobkinds.grace("anything") == 10.0 and not jobkinds.writes_model("anything")
    spec = KindSpec("writer2", (Option("n", int, 1, min=1),), locks=("model",), grace_s=3.0)
    monkeypatch.setattr(jobkinds, "SPECS", dict(jobkinds.SPECS))
    jobkinds.register("writer2", "core.jobs.selftest:run", spec=spec)
    assert jobkinds.writes_model("writer2") and jobkinds.grace("writer2") == 3.0
    with pytest.raises(OptionError, match="n must be at least 1"):
        jobkinds.check_args("writer2", {"n": 0})


def test_the_model_lock_comes_from_the_spec():
    assert jobkinds.writes_model("train") and not jobkinds.writes_model("extract")
    assert not jobkinds.writes_model("selftest") and jobkinds.writes_model("selftest", {"model_lock": True})


# ---- one grace period per kind -------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(jobkinds.KINDS))
def test_cancel_job_gives_the_kinds_grace_when_none_is_given(kind, tmp_path, monkeypatch):
    """A process that ignores SIGTERM is killed after exactly its kind's grace (a fake clock)."""
    job = jobs.Job(dir=tmp_path, id="j", kind=kind, project="p", args={}, state="running", created=now_iso(),
                   pid=424242)
    job.save()
    clock, sent = [0.0], []
    monkeypatch.setattr(jobs.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(jobs.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    monkeypatch.setattr(jobs.procs, "is_alive", lambda *a, **k: signal.SIGKILL not in [s for s, _ in sent])
    monkeypatch.setattr(jobs, "_signal_group", lambda pid, sig: sent.append((sig, clock[0])))
    final = jobs.cancel_job(job)
    grace = jobkinds.spec(kind).grace_s
    assert [s for s, _ in sent] == [signal.SIGTERM, signal.SIGKILL]
    assert sent[1][1] == pytest.approx(grace, abs=0.1)
    assert final.state == "cancelled" and final.reason == f"killed after a {grace:g} s grace period"


def test_training_has_time_to_save_whoever_cancels():
    assert jobkinds.grace("train") >= 120
    assert jobkinds.grace("demo") > jobkinds.grace("train")  # the demo stops its training stage first
    assert jobkinds.grace("bench-quality") > jobkinds.grace("train")
    assert jobkinds.grace("extract") == 10.0


# ---- the TUI's dialogs ---------------------------------------------------------------------------

def test_the_dialogs_fields_are_the_specs_options():
    from tui.app.screens import stage_options

    assert "ast" not in stage_options.__dict__
    for fields, spec in ((stage_options.extract_fields(), jobkinds.spec("extract")),
                         (stage_options.train_fields(), jobkinds.spec("train"))):
        offered = [o for o in spec.options if o.label is not None]
        assert [f.name for f in fields] == [o.name for o in offered]
        for f, o in zip(fields, offered, strict=True):
            assert f.label == o.label_text() and "{" not in f.label
            if f.kind in ("choice", "bool"):
                assert f.default == o.default
        assert stage_options.job_arg_names(spec.kind) == frozenset(spec.by_name)
    assert {f.name: f.kind for f in stage_options.extract_fields()}["reference"] == "paths"
    from tui.app.screens.convert import CONVERT_FIELDS

    convert_offered = [o for o in jobkinds.spec("convert").options if o.label]
    assert sorted(f.name for f in CONVERT_FIELDS) == sorted(o.name for o in convert_offered)  # form order its own
    assert [f.name for f in CONVERT_FIELDS][:3] == ["output", "swap", "faces"]
    labels = {o.name: o.label_text() for o in convert_offered}
    assert all(f.label == labels[f.name] for f in CONVERT_FIELDS)
    preset = next(f for f in stage_options.train_fields() if f.name == "preset")
    assert preset.kind == "choice" and "tiny" in preset.choices and preset.optional


def test_the_extraction_dialogs_check_is_the_specs(project, tmp_path):
    from PIL import Image

    from core.project.projects import add_sources
    from tui.app.screens.project import check_extract_args

    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    with pytest.raises(Exception, match="has no sources on either side"):
        check_extract_args(project, {"side": "both"})
    add_sources(project, "a", [image])
    with pytest.raises(OptionError, match="--size 2000 is out of range: use 64..1024 pixels"):
        check_extract_args(project, {"side": "both", "size": 2000})
    args = check_extract_args(project, {"side": "a", "reference": [f" {image} "]})
    assert args["reference"] == [str(image.resolve())]


def test_the_jobs_cancel_help_names_each_kinds_grace(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["job", "cancel", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: the job kind's: 10 s; train 120 s" in text
