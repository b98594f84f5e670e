"""`facepair extract`: find, align and crop the faces of a project's sources (a job)."""

from __future__ import annotations

import argparse

from core.extract.options import SPEC, check_request
from core.jobs import spec
from tui.cli.commands.common import add_detach, open_project, run_job


def register(sub, parents) -> None:
    p = sub.add_parser(
        "extract", parents=parents,
        help="find, align and crop the faces of a project's sources (a job)",
        description="Detect faces (dlib), find 68 landmarks, align and crop them into faces/a and faces/b, "
                    "and record every frame in alignments/ for conversion. Re-running resumes; --redo-missing "
                    "re-detects only the frames `facepair missing` lists.",
    )
    p.add_argument("name", help="project name")
    spec.add_arguments(p, SPEC)
    add_detach(p)
    p.set_defaults(func=cmd_extract)


def cmd_extract(args: argparse.Namespace) -> int:
    project = open_project(args)
    references = check_request(project, args.side, args.reference, fresh=args.fresh, redo_missing=args.redo_missing)
    job_args = {**spec.from_namespace(SPEC, args), "reference": references}
    return run_job(args, project, "extract", job_args)
