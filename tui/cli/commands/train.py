"""`facepair train NAME …`: start (or resume) the training job of a project, and say where it runs."""

from __future__ import annotations

import argparse
import time

from rich.markup import escape

from tui.cli.commands.common import add_detach, err_console, open_project, run_job


def register(sub, parents) -> None:
    p = sub.add_parser(
        "train", parents=parents,
        help="train (or resume) the project's model",
        description="Train the shared-encoder model of a project on its extracted faces. Resumes from the "
                    "newest checkpoint; saves every N steps and when stopped (Ctrl-C or `facepair job cancel`).",
    )
    p.add_argument("name")
    p.add_argument("--preset", metavar="P",
                   help="model preset: tiny, lite, original, hq128, hq256 (default: the checkpoint's; for a new "
                        "model lite on a CPU, original on a GPU)")
    p.add_argument("--batch", type=int, metavar="N", help="faces per side per step (default: the preset's)")
    until = p.add_mutually_exclusive_group()
    until.add_argument("--steps", type=int, metavar="N",
                       help="train until the model reaches step N (counting earlier runs), then stop")
    until.add_argument("--until-stopped", action="store_true", help="train until stopped (the default)")
    p.add_argument("--lr", type=float, metavar="X", help="learning rate (default: the preset's, or the checkpoint's)")
    p.add_argument("--save-every", type=int, metavar="N", help="checkpoint every N steps (default 500)")
    p.add_argument("--preview-every", type=int, metavar="N", help="preview grid every N steps (default 250)")
    p.add_argument("--keep", type=int, default=3, metavar="K", help="checkpoints to keep (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of a new model and of its augmentation")
    p.add_argument("--stream-from-host", action="store_true",
                   help="keep the faces in host memory and send each step's batch (for face sets too big "
                        "for the device; chosen automatically when they are)")
    multi = p.add_argument_group("several hosts (one process per host; run the same command on each)")
    multi.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0")
    multi.add_argument("--num-processes", type=int, metavar="N")
    multi.add_argument("--process-id", type=int, metavar="I")
    add_detach(p)
    p.set_defaults(func=cmd_train)


def job_args(args: argparse.Namespace) -> dict:
    out = {
        "preset": args.preset, "batch": args.batch, "steps": None if args.until_stopped else args.steps,
        "lr": args.lr, "save_every": args.save_every, "preview_every": args.preview_every,
        "keep": args.keep, "seed": args.seed, "stream": True if args.stream_from_host else None,
        "coordinator": args.coordinator, "num_processes": args.num_processes, "process_id": args.process_id,
    }
    return {k: v for k, v in out.items() if v is not None}


def cmd_train(args: argparse.Namespace) -> int:
    from core.errors import FacepairError

    multi = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in multi) and not all(v is not None for v in multi):
        raise FacepairError("a multi-host run needs all three of --coordinator HOST:PORT, --num-processes N "
                            "and --process-id I")
    if args.num_processes and args.num_processes > 1 and not args.preset:
        raise FacepairError("a multi-host run needs --preset (the same on every process)")
    for opt in ("batch", "steps", "save_every", "preview_every", "keep"):
        v = getattr(args, opt)
        if v is not None and v < 1:
            raise FacepairError(f"--{opt.replace('_', '-')} must be at least 1, not {v}")
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
