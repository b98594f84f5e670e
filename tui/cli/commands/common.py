"""What every command shares: the home, opening a project, running a job in the foreground or detached."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from core.jobs import control as jobs
from core.project.projects import Project, home_dir, load_project

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def home(args: argparse.Namespace) -> Path:
    return home_dir(getattr(args, "home", None))


def open_project(args: argparse.Namespace, name: str | None = None) -> Project:
    return load_project(home(args), name or args.name)


def add_detach(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detach", action="store_true",
                        help="start the job in the background, print its id and return")


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def run_job(args: argparse.Namespace, project: Project, kind: str, job_args: dict,
            show: Callable[[dict], None] | None = None, hint: str | None = None) -> int:
    """Start `kind` as a detached job; unless --detach, follow it here with a progress bar.

    The job always runs in its own process and session: a dropped SSH connection never stops it.
    Ctrl-C while following cancels it (the job may save first). Once it ends, its result is
    printed: as JSON on stdout with --json (progress then goes to stderr), else by `show` when
    the job succeeded.
    """
    job = jobs.start_job(project, kind, job_args)
    if getattr(args, "detach", False):
        # The id alone on stdout (for scripts: JOB=$(facepair … --detach)); hints on stderr.
        print(job.id, flush=True)
        err_console.print(f"started {kind} job [bold]{job.id}[/] in project {project.name!r}; "
                          f"follow: facepair job log {job.id} -f{hint or ''}   cancel: facepair job cancel {job.id}")
        return 0
    from tui.cli.progress import follow_job

    as_json = bool(getattr(args, "json", False))
    code = follow_job(job, console=err_console if as_json else console)
    final = jobs.load_job(job.dir)
    if as_json and final.result:
        print_json(final.result)
    elif show is not None and final.state == "succeeded" and final.result:
        show(final.result)
    return code
