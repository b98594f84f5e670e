"""facepair bench [train|extract|convert|faces|all|quality|scale]: benchmarks with the machine they ran on.

`quality` (core/bench/quality.py) is not part of `all`: it runs the whole pipeline on real clips
(extract, train, convert, eval as jobs) and takes as long as its recipe trains. Nor is `scale`
(core/bench/scale.py: long inputs, about an hour on two cores at its defaults).

Heavy imports (jax, torch, dlib) happen inside the handler, stage by stage (core/bench/report.py), so
`facepair bench train` runs on a machine without dlib or Textual.
"""

from __future__ import annotations

import argparse

from tui.cli.commands.common import console, err_console, print_json

WHICH = ("train", "extract", "convert", "faces", "all", "quality", "scale")
LONG = ("scale",)  # stages `all` leaves out


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, except where there is none to show (None, an empty list)."""

    def _get_help_string(self, action):
        if action.default is None or action.default == []:
            return action.help
        return super()._get_help_string(action)


def register(sub, parents) -> None:
    p = sub.add_parser(
        "bench", parents=parents,
        help="benchmark training, extraction and conversion on this machine; `quality`: swap quality on real clips",
        description="Benchmarks, with the machine, devices and library versions they ran on. "
                    "train: images/s of the real training step (augmentation included), step time, "
                    "compile time, achieved FLOP/s and MFU where the device's peak is known; --torch "
                    "also times a PyTorch eager implementation of the same model in the same run. "
                    "extract and convert: see docs/extraction.md and docs/conversion.md. "
                    "faces: a side of 10,000 faces (real crops, copied): thumbnail cache build, the faces "
                    "screen's first page, re-sorting (docs/curation.md). "
                    "quality (not part of all): the real pipeline on pairs of real clips at a fixed recipe, "
                    "one row of swap-quality figures per pair (docs/quality.md).",
        formatter_class=_DefaultsFormatter)
    p.add_argument("which", nargs="?", choices=WHICH, default="all", help="what to benchmark")
    p.add_argument("--json", action="store_true", help="print the results as JSON (stdout) only")
    g = p.add_argument_group("train")
    g.add_argument("--preset", nargs="+", metavar="P", default=None,
                   help="presets to time (default: lite on a CPU, original on an accelerator); "
                        "convert and quality use the first (quality's default: lite)")
    g.add_argument("--batch", type=int, default=None, help="faces per side per step (default 16)")
    g.add_argument("--steps", type=int, default=None,
                   help="training steps per timed run (default 10); quality: the steps trained (default 4600: "
                        "lite's discriminator joins at 3600)")
    g.add_argument("--repeats", type=int, default=3, help="timed runs (the median counts)")
    g.add_argument("--torch", action="store_true",
                   help="also time the PyTorch eager reference (needs the `bench` extra: torch==2.13.0)")
    g = p.add_argument_group("extract / convert")
    g.add_argument("--video", default=None, help="video to run on (default: the shared sample clip or a "
                                                  "synthetic one)")
    g.add_argument("--workers", type=int, default=None, help="extraction worker processes")
    g.add_argument("--engine", choices=("jax", "onnx", "both"), default="both",
                   help="convert: both (default) times JAX, then ONNX Runtime where the export extra is installed")
    g = p.add_argument_group("faces (docs/curation.md)")
    g.add_argument("--faces", type=int, default=None, metavar="N",
                   help="faces: the side made from real crops (extracted once, then copied; default 10000); "
                        "scale: faces in the face-set load (default 10000; 0: skip)")
    g = p.add_argument_group("scale (long inputs; --video: the clip looped, default talking/d18.mp4)")
    g.add_argument("--lengths", type=float, nargs="+", default=None, metavar="MIN",
                   help="minutes of 1080p input to extract and convert (default 1 5 20)")
    g.add_argument("--fps", type=float, default=None, help="frame rate of the long inputs (default 10)")
    g.add_argument("--store-frames", type=int, default=None,
                   help="frames of the synthetic alignments store (default 100000; 0: skip)")
    g = p.add_argument_group("quality (a recipe is --recipe JSON, then the flags below override it)")
    g.add_argument("--pair", nargs=2, action="append", metavar=("A", "B"), default=None,
                   help="A's clip (converted) and B's clip; repeat for more pairs (default: talking/d18.mp4 → "
                        "d19.mp4 and talking/d3.mp4 → d6.mp4 from --data)")
    g.add_argument("--data", default=None, metavar="DIR", help="where the default clips are (default ../shared/data "
                                                                "beside the checkout)")
    g.add_argument("--recipe", metavar="JSON", help="a recipe: a JSON file or JSON text (keys: preset, steps, minutes, "
                                                   "batch, seed, frames, identity_faces, train, extract, convert, "
                                                   "then, start_from)")
    g.add_argument("--minutes", type=float, default=None, help="train for M minutes instead of --steps")
    g.add_argument("--seed", type=int, default=None, help="the training seed (default 0)")
    g.add_argument("--frames", type=int, default=None, help="frames of A's clip converted and measured (default all)")
    g.add_argument("--identity-faces", type=int, default=None,
                   help="frames whose faces get dlib descriptors (default 24)")
    for stage in ("train", "extract", "convert"):
        g.add_argument(f"--{stage}-opt", action="append", default=[], metavar="KEY=VALUE",
                       help=f"an extra option of the {stage} job (value read as JSON when it is), repeatable")
    g.add_argument("--then", nargs="+", action="append", default=[], metavar=("STEPS", "KEY=VALUE"),
                   help="after training, resume the model to step STEPS with these train options (for example "
                        "--then 2725 gan_power=0.1); repeatable, each to more steps")
    g.add_argument("--start-from", metavar="HOME",
                   help="start each pair from the model an earlier run of the same recipe made (its --home) at "
                        "step --steps, and train only the --then resumes: several ends of training against one "
                        "beginning")
    g.add_argument("--out", metavar="FILE", help="where the run's JSON goes (default HOME/bench-results/quality-TIME.json)")
    g.add_argument("--from", dest="from_file", metavar="FILE",
                   help="print the table (markdown) of a saved run's JSON and exit")
    p.set_defaults(func=cmd_bench)


def _default_presets() -> list[str]:
    import jax

    return ["lite"] if jax.default_backend() == "cpu" else ["original"]


def _faces_screen_timer():
    """The faces screen's own first-page timer (tui/app/bench.py), when Textual is installed."""
    try:
        from tui.app.bench import first_page_seconds
    except ImportError:
        return None
    return first_page_seconds


def cmd_bench(args: argparse.Namespace) -> int:
    from core.bench import report as bench
    from core.errors import FacepairError
    from core.jaxmodels import xla_cpu

    xla_cpu.configure()  # before _default_presets starts JAX's backend
    if args.which == "quality":
        return cmd_quality(args)
    args.batch = 16 if args.batch is None else args.batch
    args.steps = 10 if args.steps is None else args.steps
    stages = [s for s in bench.STAGES if s not in LONG] if args.which == "all" else [args.which]
    if args.batch < 1 or args.steps < 1 or args.repeats < 1:
        raise FacepairError("--batch, --steps and --repeats must be at least 1")
    presets = args.preset or (_default_presets() if "train" in stages or "convert" in stages else [])
    if presets:
        from core.jaxmodels.presets import get_preset

        for p in presets:
            get_preset(p)  # a clear error for an unknown name before anything compiles
    options = {
        "train": {"presets": presets, "batch": args.batch, "steps": args.steps, "repeats": args.repeats,
                  "torch": args.torch},
        "extract": {"video": args.video, "workers": args.workers},
        "convert": {"video": args.video, "engine": args.engine, **({"preset": presets[0]} if presets else {})},
        "faces": {"faces": args.faces or 10_000, "screen": _faces_screen_timer() if "faces" in stages else None},
        "scale": {k: v for k, v in (("video", args.video), ("lengths", args.lengths), ("fps", args.fps),
                                    ("workers", args.workers), ("faces", args.faces),
                                    ("store_frames", args.store_frames)) if v is not None},
    }

    def progress(msg: str) -> None:
        err_console.print(f"[dim]{msg}[/]")

    result = bench.run(stages, options, progress=progress)
    if args.json:
        print_json(result)
        return 0
    _print(result)
    return 0


def _print(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from core.bench import report as bench

    # Wide tables stay whole when the output is a file or a pipe (rich assumes 80 columns there,
    # and a print's width cannot exceed its console's).
    out = console if console.is_terminal else Console(width=200, highlight=False)
    width = out.width
    for line in bench.header_lines(result["machine"]):
        out.print(line, markup=False, width=width)
    summary = bench.summary_rows(result)
    if summary:
        t = Table(title="summary: each comparison the issues name, with its target", title_justify="left")
        for h in bench.SUMMARY_HEAD:
            t.add_column(h)
        for row in summary:
            t.add_row(*row)
        out.print(t, width=width)
    if "train" in result:
        head, body = bench.train_table(result["train"])
        t = Table(title="train", title_justify="left")
        for h in head:
            t.add_column(h, justify="left" if h in ("preset", "device", "conv", "torch layout") else "right")
        for row in body:
            t.add_row(*row)
        out.print(t, width=width)
        for r in result["train"]:
            if r.get("flops_per_step"):
                out.print(f"  {r['preset']}: {bench.si(r['flops_per_step'], 'FLOP')} per step (XLA cost "
                              f"analysis), runs {', '.join(str(x) for x in r['step_ms_all'])} ms/step",
                              markup=False, width=width)
    for stage in ("extract", "convert", "faces"):
        if stage in result:
            t = Table(title=stage, title_justify="left", show_header=False)
            t.add_column("key")
            t.add_column("value", justify="right")
            for k, v in result[stage].items():
                t.add_row(k, bench._fmt(v))
            out.print(t, width=width)
    if "scale" in result:
        _print_scale(out, result["scale"], width)
    for stage in result.get("missing", []):
        out.print(f"{stage}: not part of this build (core/bench/{stage}.py is missing)", markup=False)
    m = result["machine"]
    if m.get("load_average") and m["load_average"][0] > (m.get("cores") or 1) * 0.5:
        out.print(f"note: the machine was busy (load average {bench._fmt(m['load_average'])} on "
                      f"{m.get('cores')} cores): the figures are lower than on a quiet machine", markup=False)


def _print_scale(out, sc: dict, width: int) -> None:
    """The long-input runs as a table (one row per length and stage), then the other figures."""
    from rich.table import Table

    from core.bench import report as bench
    from core.bench import scale

    t = Table(title=f"scale: {sc['clip']} looped to {sc['width']}×{sc['height']} at {sc['fps']:g} fps",
              title_justify="left")
    for h in ("input", "stage", "frames", "frames/s", "peak RSS MiB (all)", "peak PSS MiB", "peak RSS MiB (root)",
              "RSS 2nd → last quarter", "processes"):
        t.add_column(h, justify="left" if h in ("input", "stage") else "right")
    for r in sc.get("runs", []):
        for stage in ("extract", "convert"):
            if stage in r:
                e = r[stage]
                t.add_row(f"{r['minutes']:g} min", stage, f"{e['frames']:,}", bench._fmt(e["frames_per_s"]),
                          bench._fmt(e["peak_rss_mib"]), bench._fmt(e["peak_pss_mib"]),
                          bench._fmt(e["peak_root_rss_mib"]),
                          f"{bench._fmt(e['rss_second_quarter_mib'])} → {bench._fmt(e['rss_last_quarter_mib'])}",
                          str(e["processes"]))
    out.print(t, width=width)
    for line in scale.other_lines(sc):
        out.print(f"  {line}", markup=False, width=width)


# ---- quality ---------------------------------------------------------------------------------------

def quality_recipe(args: argparse.Namespace):
    """The recipe: --recipe's JSON, then each flag given on top of it."""
    from core.bench import quality as bq

    data = bq.load_recipe(args.recipe) if args.recipe else {}
    if args.preset:
        data["preset"] = args.preset[0]
    if args.steps is not None:
        data["steps"], data["minutes"] = args.steps, None
    if args.minutes is not None:
        data["minutes"], data["steps"] = args.minutes, None
    for key in ("batch", "seed", "frames", "identity_faces"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    for stage in ("train", "extract", "convert"):
        for text in getattr(args, f"{stage}_opt"):
            k, v = bq.parse_option(text)
            data.setdefault(stage, {})[k] = v
    for steps, *opts in args.then:
        data.setdefault("then", []).append(_resume(steps, opts))
    if args.start_from:
        data["start_from"] = args.start_from
    return bq.Recipe.from_json(data)


def _resume(steps: str, opts: list[str]) -> dict:
    """--then STEPS KEY=VALUE…: one resume of the recipe."""
    from core.bench import quality as bq
    from core.errors import FacepairError

    if not steps.isdigit():
        raise FacepairError(f"--then starts with the step to train to, not {steps!r}")
    return {"steps": int(steps), **dict(bq.parse_option(t) for t in opts)}


def cmd_quality(args: argparse.Namespace) -> int:
    import json
    import shlex
    import sys
    import time
    from pathlib import Path

    from rich.markup import escape

    from core.bench import quality as bq
    from core.errors import FacepairError
    from core.jobs import control as jobs
    from tui.cli.commands.common import home
    from tui.cli.progress import follow_job

    if args.from_file:
        doc = json.loads(Path(args.from_file).expanduser().read_text())
        console.print(bq.markdown(doc), markup=False, highlight=False, soft_wrap=True)
        return 0
    recipe = quality_recipe(args)
    pairs = [(Path(a), Path(b)) for a, b in args.pair] if args.pair else bq.default_pairs(args.data)
    h = home(args)
    out_path = Path(args.out).expanduser() if args.out else bq.default_output(h)
    say = err_console if args.json else console
    command = shlex.join(["facepair", *sys.argv[1:]]) if sys.argv[1:] else "facepair bench quality"
    started = time.time()
    say.print(f"quality benchmark: {len(pairs)} pair(s), recipe {escape(recipe.describe())}; projects in {escape(str(h))}")
    rows, failure, code = [], None, 0
    for n, (a, b) in enumerate(pairs, 1):
        project = bq.prepare(h, a, b, recipe)
        say.print(f"[bold]pair {n}/{len(pairs)}[/]: {escape(a.name)} → {escape(b.name)} (project {escape(project.name)})")
        job = jobs.start_job(project, bq.KIND, {"recipe": recipe.to_json()})
        code = follow_job(job, console=say)
        final = jobs.load_job(job.dir)
        if final.state != "succeeded" or not final.result:
            failure = f"pair {a.name} → {b.name}: {final.state}" + (f" ({final.reason})" if final.reason else "")
            break
        rows.append(final.result)
    doc = bq.result_document(rows, recipe, command, started)
    if failure:
        doc["failed"] = failure
    path = bq.write_document(out_path, doc)
    if args.json:
        print_json(doc)
    else:
        _print_quality(doc)
    say.print(f"wrote {escape(str(path))} (the docs table: facepair bench quality --from {escape(str(path))})")
    if failure:
        if code == 130:
            return 130
        raise FacepairError(f"the quality benchmark stopped: {failure}")
    return 0


def _print_quality(doc: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from core.bench import quality as bq

    out = console if console.is_terminal else Console(width=220, highlight=False)
    t = Table(title=f"quality: {bq.Recipe(**doc['recipe']).describe()}", title_justify="left")
    for h in bq.headers():
        t.add_column(h, justify="left" if h in ("pair", "device") else "right")
    for row in doc["rows"]:
        t.add_row(*bq.cells(row))
    out.print(t, width=out.width)
