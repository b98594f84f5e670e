"""`facepair train NAME …`: start (or resume) the training job of a project, and say where it runs."""

from __future__ import annotations

import argparse
import time

from rich.markup import escape

from core.jobs import spec
from core.train.options import MULTI_HOST, SPEC, parse_batch
from tui.cli.commands.common import add_detach, err_console, open_project, run_job


def register(sub, parents) -> None:
    p = sub.add_parser(
        "train", parents=parents,
        help="train (or resume) the project's model",
        description="Train the shared-encoder model of a project on its extracted faces. Resumes from the "
                    "newest checkpoint; saves every N steps and when stopped (Ctrl-C or `facepair job cancel`).",
    )
    p.add_argument("name")
    # Ranges are checked when the job starts (core's words, before anything runs), not by argparse.
    spec.add_arguments(p, SPEC, ["preset", "batch"], check=False)
    until = p.add_mutually_exclusive_group()
    spec.add_arguments(until, SPEC, ["steps"], check=False)
    until.add_argument("--until-stopped", action="store_true", help="train until stopped (the default)")
    # Every other option of the spec, in the spec's order (a new option needs no edit here).
    placed = {"preset", "batch", "steps", *MULTI_HOST}
    spec.add_arguments(p, SPEC, [o.name for o in spec.cli_options(SPEC) if o.name not in placed], check=False)
    multi = p.add_argument_group("several hosts (one process per host; run the same command on each)")
    spec.add_arguments(multi, SPEC, list(MULTI_HOST), check=False)
    add_detach(p)
    p.set_defaults(func=cmd_train)


def job_args(args: argparse.Namespace) -> dict:
    out = spec.from_namespace(SPEC, args, drop_none=True)
    if "batch" in out:
        out["batch"] = parse_batch(out["batch"])  # "64" → 64 (its range then checked), "auto" kept
    if args.until_stopped:
        out.pop("steps", None)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from core.errors import FacepairError

    multi = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in multi) and not all(v is not None for v in multi):
        raise FacepairError("a multi-host run needs all three of --coordinator HOST:PORT, --num-processes N "
                            "and --process-id I")
    if args.num_processes and args.num_processes > 1 and not args.preset:
        raise FacepairError("a multi-host run needs --preset (the same on every process)")
    spec.validate(SPEC, job_args(args))  # before the project is opened, as always
    project = open_project(args)
    if args.detach:
        code = run_job(args, project, "train", job_args(args))
        _print_device_line(project)
        return code
    return run_job(args, project, "train", job_args(args))


def _print_device_line(project, timeout: float = 30.0) -> None:
    """With --detach, wait (briefly) for the job to say where it trains, and print it on stderr."""
    from core.jobs import control as jobs
    from core.jobs import follow

    job = next((j for j in jobs.project_jobs(project) if j.kind == "train" and j.active), None)
    if job is None:
        return
    deadline = time.monotonic() + timeout
    for ev in follow.events(job, tick=lambda _: time.monotonic() >= deadline):
        if ev.get("type") == "message" and str(ev.get("text", "")).startswith("trains on"):
            err_console.print(escape(ev["text"]))
            return
