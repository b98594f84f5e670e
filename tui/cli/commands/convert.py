"""`facepair convert` and `facepair preview`: swap faces in a video, an image or a folder of images.

Both run as detached jobs (`convert`, `preview`); the options are checked here first so a typo, a
missing input or an unwritable output is reported at once, before any job starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.markup import escape

from tui.cli.commands.common import add_detach, console, open_project, run_job


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--swap", choices=["a-to-b", "b-to-a"], default="a-to-b",
                   help="a-to-b (default): the input shows A, B's face is put on; b-to-a: the reverse")
    p.add_argument("--faces", choices=["all", "match"], default="match",
                   help="match (default): swap only faces of the replaced side's person (dlib descriptor), "
                        "leave other people alone; all: swap every face")
    p.add_argument("--mask", choices=["hull", "learned"], default="hull",
                   help="hull (default): the landmarks' convex hull; learned: the model's own mask (presets with one)")
    p.add_argument("--erode", type=int, metavar="PX", help="shrink the mask by PX frame pixels (default: 3%% of the face width)")
    p.add_argument("--blur", type=int, metavar="PX", help="feather the mask edge over PX frame pixels (default: 8%% of the face width)")
    p.add_argument("--color", choices=["none", "reinhard", "histogram"], default="reinhard",
                   help="colour-match the new face to the original: reinhard (default, L*a*b* mean/std), "
                        "histogram, or none")
    p.add_argument("--blend", choices=["feather", "poisson"], default="feather",
                   help="feather (default): soft alpha blend; poisson: seamless clone, then feathered")
    p.add_argument("--sharpen", type=float, default=0.0, metavar="X", help="unsharp-mask amount for the new face (default 0)")
    p.add_argument("--label", action=argparse.BooleanOptionalAction, default=True,
                   help="burn the visible 'AI-generated' mark into the corner (default: on). The metadata label "
                        "is always written, and a C2PA manifest for .mp4, .m4v, .mov, .png and .jpg outputs "
                        "(C2PA cannot sign .mkv: an .mkv with --no-label is labelled by its metadata alone)")
    p.add_argument("--detector", choices=["hog", "cnn"], default="hog",
                   help="face detector for inputs that were not extracted (default hog)")


def register(sub, parents) -> None:
    p = sub.add_parser("convert", parents=parents,
                       help="swap faces in a video, image or folder (audio kept, output labelled as synthetic)",
                       description="Put the other side's generated face on every matching face of the input, "
                                   "keeping pose, expression, lighting, frame rate and audio. Every output is "
                                   "labelled as AI-generated: container metadata always, a C2PA manifest for "
                                   ".mp4/.m4v/.mov and images (not .mkv, which C2PA cannot sign), and the "
                                   "visible mark unless --no-label. An existing --output is replaced only with "
                                   "--overwrite (or a yes when asked); a source of the project never is.")
    p.add_argument("name", help="project")
    p.add_argument("--input", "-i", required=True, metavar="VIDEO|IMAGE|FOLDER")
    p.add_argument("--output", "-o", metavar="PATH",
                   help="where to write (default: PROJECT/output/INPUT_a-to-b.mp4, .png/.jpg, or a folder, "
                        "replaced by a re-run); .mkv gets no C2PA manifest")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --output without asking (never a source of the project)")
    p.add_argument("--start", metavar="T", help="start time in the video (seconds or [h:]mm:ss)")
    p.add_argument("--end", metavar="T", help="end time in the video (seconds or [h:]mm:ss)")
    _merge_args(p)
    p.add_argument("--crf", type=int, default=18, metavar="N", help="H.264 quality, 0–51, lower is better (default 18)")
    p.add_argument("--batch", type=int, default=32, metavar="N", help="faces per model call (default 32)")
    add_detach(p)
    p.add_argument("--json", action="store_true", help="print the job's result as JSON when it ends")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("preview", parents=parents,
                       help="convert one frame and write it side by side with the original (to tune options)")
    p.add_argument("name", help="project")
    p.add_argument("--input", "-i", required=True, metavar="VIDEO|IMAGE")
    p.add_argument("--frame", type=int, default=0, metavar="N", help="frame index (default 0)")
    p.add_argument("--output", "-o", metavar="PNG", help="where to write (default: the job's folder)")
    _merge_args(p)
    add_detach(p)
    p.set_defaults(func=cmd_preview)


def _check(args, project, kind_wanted: str) -> dict:
    """The checks that need no model: options, input, output. Returns the job's path arguments."""
    from core.convert import plan as convert

    convert.check_direction(args.swap)
    convert.merge_options(args.mask, args.erode, args.blur, args.color, args.blend, args.sharpen)
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
        if not 0 <= args.crf <= 51:
            raise convert.ConvertError(f"--crf must be 0–51 (lower is better quality), not {args.crf}")
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


def _merge_job_args(args) -> dict:
    return {"swap": args.swap, "faces": args.faces, "mask": args.mask, "erode": args.erode, "blur": args.blur,
            "color": args.color, "blend": args.blend, "sharpen": args.sharpen, "label": args.label,
            "detector": args.detector}


def cmd_convert(args: argparse.Namespace) -> int:
    project = open_project(args)
    job_args = _check(args, project, "convert")
    job_args.update(_merge_job_args(args), start=args.start, end=args.end, crf=args.crf, batch=args.batch)
    if not args.label:
        from core.convert.plan import c2pa_possible, input_kind

        labels = "metadata, C2PA" if c2pa_possible(Path(job_args["output"]), input_kind(Path(job_args["input"]))) \
            else "metadata only"
        console.print(f"[yellow]--no-label: no visible mark; the file still says it is AI-generated ({labels})[/]")
    return run_job(args, project, "convert", job_args, show=_show_output)


def cmd_preview(args: argparse.Namespace) -> int:
    project = open_project(args)
    job_args = _check(args, project, "preview")
    job_args.update(_merge_job_args(args), frame=args.frame)
    return run_job(args, project, "preview", job_args, show=_show_output)


def _show_output(result: dict) -> None:
    if result.get("output"):
        console.print(f"output: [bold]{escape(result['output'])}[/]")
