"""`facepair convert` and `facepair preview`: swap faces in a video, an image or a folder of images.

Both run as detached jobs (`convert`, `preview`); the options are checked here first so a typo, a
missing input or an unwritable output is reported at once, before any job starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.markup import escape

from core.convert.options import CONVERT, PREVIEW
from core.jobs import spec
from tui.cli.commands.common import add_detach, console, open_project, run_job

PATHS = ("input", "output", "overwrite")  # checked and resolved by `_check`


def register(sub, parents) -> None:
    # Ranges are checked before the job starts, in core's words (`_options`), not by argparse.
    p = sub.add_parser("convert", parents=parents,
                       help="swap faces in a video, image or folder (audio kept, output labelled as synthetic)",
                       description="Put the other side's generated face on every matching face of the input, "
                                   "keeping pose, expression, lighting, frame rate and audio. Every output is "
                                   "labelled as AI-generated: container metadata always, a C2PA manifest for "
                                   ".mp4/.m4v/.mov and images (not .mkv, which C2PA cannot sign), and the "
                                   "visible mark unless --no-label. An existing --output is replaced only with "
                                   "--overwrite (or a yes when asked); a source of the project never is.")
    p.add_argument("name", help="project")
    spec.add_arguments(p, CONVERT, check=False)
    add_detach(p)
    p.add_argument("--json", action="store_true", help="print the job's result as JSON when it ends")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("preview", parents=parents,
                       help="convert one frame and write it side by side with the original (to tune options)")
    p.add_argument("name", help="project")
    spec.add_arguments(p, PREVIEW, check=False)
    add_detach(p)
    p.set_defaults(func=cmd_preview)


def _options(args, kind_spec) -> dict:
    """The job's options other than its paths, checked against the kind's spec."""
    given = spec.from_namespace(kind_spec, args)
    spec.validate(kind_spec, given)
    return {k: v for k, v in given.items() if k not in PATHS}


def _check(args, project, kind_wanted: str) -> dict:
    """The checks of input and output that need no model. Returns the job's path arguments."""
    from core.convert import plan as convert

    src = Path(args.input).expanduser().resolve()
    kind = convert.input_kind(src)
    if kind_wanted == "preview" and kind == "folder":
        from core.errors import FacepairError

        raise FacepairError(f"preview takes a video or an image, and {src} is a folder: pick one image in it")
    out = {"input": str(src)}
    if kind_wanted == "convert":
        t0, t1 = convert.parse_time(args.start), convert.parse_time(args.end)
        if t0 is not None and t1 is not None and t1 <= t0:
            raise convert.ConvertError(f"--end ({args.end}) must be after --start ({args.start})")
        if kind != "video" and (t0 or t1 is not None):
            raise convert.ConvertError("--start/--end apply to a video input, not to images")
        overwrite = bool(getattr(args, "overwrite", False))
        try:
            dest = convert.resolve_output(project, src, kind, args.swap, args.output, overwrite)
        except convert.OutputExists:
            if not sys.stdin.isatty() or not _ask(f"{Path(args.output).expanduser().resolve()} exists. Replace it?"):
                raise
            overwrite = True
            dest = convert.resolve_output(project, src, kind, args.swap, args.output, overwrite)
        out["output"], out["overwrite"] = str(dest), overwrite
        if not convert.c2pa_possible(dest, kind):
            console.print(f"[yellow]{escape(convert.c2pa_note(dest, args.label))}[/]")
    elif args.output:
        out["output"] = str(Path(args.output).expanduser().resolve())
    return out


def _ask(question: str) -> bool:
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def cmd_convert(args: argparse.Namespace) -> int:
    project = open_project(args)
    options = _options(args, CONVERT)
    job_args = {**_check(args, project, "convert"), **options}
    if not args.label:
        from core.convert.plan import c2pa_possible, input_kind

        labels = "metadata, C2PA" if c2pa_possible(Path(job_args["output"]), input_kind(Path(job_args["input"]))) \
            else "metadata only"
        console.print(f"[yellow]--no-label: no visible mark; the file still says it is AI-generated ({labels})[/]")
    return run_job(args, project, "convert", job_args, show=_show_output)


def cmd_preview(args: argparse.Namespace) -> int:
    project = open_project(args)
    options = _options(args, PREVIEW)
    job_args = {**_check(args, project, "preview"), **options}
    return run_job(args, project, "preview", job_args, show=_show_output)


def _show_output(result: dict) -> None:
    if result.get("output"):
        console.print(f"output: [bold]{escape(result['output'])}[/]")
