"""`facepair extract`: find, align and crop the faces of a project's sources (a job)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import FacepairError
from tui.cli.commands.common import add_detach, open_project, positive_int, run_job

# Mirrors core.extract.pipeline's defaults without importing it (and numpy) for --help.
BLUR_DEFAULT = 20.0
IDENTITY_DEFAULT = 0.6
DETECT_EVERY_DEFAULT = 10


def _size(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of pixels") from None
    if not 64 <= v <= 1024:
        raise argparse.ArgumentTypeError(f"{v} is out of range: use 64..1024 pixels")
    return v


def register(sub, parents) -> None:
    p = sub.add_parser(
        "extract", parents=parents,
        help="find, align and crop the faces of a project's sources (a job)",
        description="Detect faces (dlib), find 68 landmarks, align and crop them into faces/a and faces/b, "
                    "and record every frame in alignments/ for conversion. Re-running resumes.",
    )
    p.add_argument("name", help="project name")
    p.add_argument("--side", choices=["a", "b", "both"], default="both", help="which side's sources (default both)")
    p.add_argument("--detector", choices=["hog", "cnn"], default="hog",
                   help="hog: fast, frontal faces (default); cnn: slower, finds turned and dim faces")
    p.add_argument("--size", type=_size, default=256, metavar="PX", help="crop size, 64..1024 (default 256)")
    p.add_argument("--every", type=positive_int, default=1, metavar="N", help="use every Nth video frame (default 1)")
    p.add_argument("--min-face", type=positive_int, default=None, metavar="PX",
                   help="smallest face to find and keep (default: 40 px, or 1/16 of a large frame's short side)")
    p.add_argument("--reference", nargs="+", metavar="IMAGE",
                   help="photos of the side's person: keep only faces of this person (with --side a or b)")
    p.add_argument("--identity-threshold", type=float, default=IDENTITY_DEFAULT, metavar="D",
                   help=f"descriptor distance to the reference that still counts as the same person "
                        f"(default {IDENTITY_DEFAULT})")
    p.add_argument("--no-identity", action="store_true",
                   help="keep every face (default: keep faces of the --reference person, else of the side's "
                        "first confident face)")
    p.add_argument("--blur", type=float, default=BLUR_DEFAULT, metavar="T",
                   help=f"drop faces blurrier than this (variance of the Laplacian; 0 keeps all; default {BLUR_DEFAULT:g})")
    p.add_argument("--no-smooth", action="store_true", help="do not smooth video landmarks in time")
    p.add_argument("--detect-every", type=positive_int, default=DETECT_EVERY_DEFAULT, metavar="K",
                   help=f"full-frame detection every K video frames, tracking in between (default {DETECT_EVERY_DEFAULT})")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="worker processes (default: one per core)")
    p.add_argument("--fresh", action="store_true", help="forget earlier results of these sides and start over")
    add_detach(p)
    p.set_defaults(func=cmd_extract)


def cmd_extract(args: argparse.Namespace) -> int:
    project = open_project(args)
    sides = ("a", "b") if args.side == "both" else (args.side,)
    if not any(project.sources_of(s) for s in sides):
        which = "either side" if args.side == "both" else f"side {args.side}"
        raise FacepairError(f"project {project.name!r} has no sources on {which}: add some with "
                            f"`facepair add-source {project.name} a|b PATH…`")
    references = None
    if args.reference:
        if args.side == "both":
            raise FacepairError("--reference photos show one person: use them with --side a or --side b")
        references = []
        for r in args.reference:
            path = Path(r).expanduser().resolve()
            if not path.is_file():
                raise FacepairError(f"reference photo {r}: no such file")
            references.append(str(path))
    job_args = {
        "side": args.side, "size": args.size, "every": args.every, "detector": args.detector,
        "min_face": args.min_face, "reference": references, "blur": args.blur,
        "identity": not args.no_identity, "identity_threshold": args.identity_threshold,
        "smooth": not args.no_smooth, "detect_every": args.detect_every, "workers": args.workers,
        "fresh": args.fresh,
    }
    return run_job(args, project, "extract", job_args)
