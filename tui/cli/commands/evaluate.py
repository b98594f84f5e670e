"""`facepair eval NAME --input VIDEO`: measure a conversion (identity, expression, pose, stability,
detail, seam, reconstruction) with the `eval` job (core/evaluate/job.py); a table, or JSON with --json."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from core.evaluate.options import SPEC
from core.jobs import spec
from tui.cli.commands.common import add_detach, console, open_project, run_job


def register(sub, parents) -> None:
    p = sub.add_parser(
        "eval", parents=parents,
        help="measure a converted video: identity, expression and pose kept, stability, detail, seam, "
             "reconstruction",
        description="Measure a conversion with dlib's face descriptor and landmarks: the share of swapped faces "
                    "that read as B (and still as A) at distance 0.6, the landmark error of points 17-67 against "
                    "the original (expression kept), the yaw/pitch/roll error (solvePnP onto a generic 3-D face), "
                    "frame-to-frame landmark jitter against the original's, detail (variance of the Laplacian of "
                    "the inner face on a 64 and a 128 px head crop, output / original), the colour step (ΔE) "
                    "across the blend mask's edge against the original's, and SSIM/PSNR of the held-out faces "
                    "of each side through their own decoder (docs/quality.md).",
    )
    p.add_argument("name", help="project")
    spec.add_arguments(p, SPEC)
    p.add_argument("--json", action="store_true", help="print the result as JSON (progress goes to stderr)")
    add_detach(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from core.evaluate import job as evaluate

    project = open_project(args)
    # Checked here so a wrong path is reported before any job starts.
    pair = evaluate.find_pair(project, args.input, args.original)
    job_args = {**spec.from_namespace(SPEC, args), "input": str(pair.converted), "original": str(pair.original)}
    return run_job(args, project, "eval", job_args, show=print_result)


def print_result(result: dict) -> None:
    console.print(f"[bold]{escape(Path(result['input']).name)}[/] vs [bold]{escape(Path(result['original']).name)}[/]"
                  f"  ({result['swap']}, {result['faces']} faces in {result['frames']} frames; model "
                  f"{result['model']['preset']} step {result['model']['step']})")
    console.print(table(result))


def table(result: dict) -> Table:
    from core.evaluate.job import table_rows

    t = Table(header_style="bold")
    t.add_column("")
    t.add_column("metric")
    t.add_column("value", justify="right")
    last = None
    for section, metric, value in table_rows(result):
        t.add_row(section if section != last else "", metric, value)
        last = section
    return t
