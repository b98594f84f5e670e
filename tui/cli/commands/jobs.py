"""Commands on jobs: jobs, job show|log|cancel, and the built-in selftest job."""

from __future__ import annotations

import argparse
import sys
import time

from rich import box
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from core.errors import JobError
from core.jobs import control as jobs
from core.jobs import follow, spec
from core.jobs import kinds as jobkinds
from core.jobs.events import read_events, split_corrupt
from core.jobs.selftest import SPEC as SELFTEST
from tui.cli.commands.common import add_detach, console, home, open_project, print_json, run_job
from tui.styles import job_state_style


def register(sub, parents) -> None:
    p = sub.add_parser("jobs", parents=parents, help="list every job of every project")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="include finished jobs older than a day")
    p.set_defaults(func=cmd_jobs)

    job = sub.add_parser("job", parents=parents, help="show, follow the log of, or cancel one job")
    jsub = job.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    p = jsub.add_parser("show", parents=parents, help="state, times, reason and the latest events")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_job_show)
    p = jsub.add_parser("log", parents=parents, help="print the job's log (stdout/stderr)")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    p.set_defaults(func=cmd_job_log)
    p = jsub.add_parser("cancel", parents=parents, help="SIGTERM, a grace period to save, then SIGKILL")
    p.add_argument("job_id", metavar="JOB")
    p.add_argument("--grace", type=float, default=None,
                   help="seconds to wait before SIGKILL (default: the job kind's: " + _graces() + ")")
    p.set_defaults(func=cmd_job_cancel)

    p = sub.add_parser("selftest", parents=parents, help="run a harmless job that sleeps and writes events")
    p.add_argument("name", help="project to run it in")
    spec.add_arguments(p, SELFTEST, ["seconds", "steps"], check=False)
    add_detach(p)
    p.set_defaults(func=cmd_selftest)


def _graces() -> str:
    """'10 s; train 120 s, …': the kinds' cancel grace periods, the common one first."""
    graces = {kind: jobkinds.grace(kind) for kind in jobkinds.KINDS}
    usual = max(set(graces.values()), key=list(graces.values()).count)
    others = [f"{kind} {g:g} s" for kind, g in graces.items() if g != usual]
    return f"{usual:g} s" + (f"; {', '.join(others)}" if others else "")


def _age(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"


def _progress(job: jobs.Job) -> str:
    from core.jobs.events import last_event

    ev = last_event(job.events_path, "progress")
    if not ev:
        return "-"
    if ev.get("total"):
        return f"{ev.get('done', 0)}/{ev['total']}"
    return str(ev.get("done", ""))


def cmd_jobs(args: argparse.Namespace) -> int:
    rows = jobs.all_jobs(home(args))
    if not args.all:
        rows = [j for j in rows if j.active or not j.readable or j.age_s() < 86400]
    if args.json:
        print_json([j.to_json() | {"dir": str(j.dir)} for j in rows])
        return 0
    if not rows:
        console.print("no jobs")
        return 0
    cells = [(j.id, j.project, j.kind, j.state, _progress(j), _age(j.age_s()), j.reason or "") for j in rows]
    # Job ids are input to other commands: never cut or wrap them. The id, kind, state, progress
    # and age columns keep their width; project and reason wrap to make room. A terminal too
    # narrow for that gets one block per job instead of a table.
    heads = ("job", "project", "kind", "state", "progress", "age", "reason")
    fixed = {0, 2, 3, 4, 5}
    widths = [max(len(heads[i]), *(len(c[i]) for c in cells)) for i in range(len(heads))]
    reason_room = min(widths[6], 24)  # below this a reason is unreadable in a column
    minimum = sum(widths[i] for i in fixed) + min(widths[1], 8) + reason_room + len(heads) - 1
    if console.width < minimum:
        for c, j in zip(cells, rows, strict=True):
            console.print(c[0], style="bold", no_wrap=True, overflow="ignore", crop=False)
            line = f"{escape(c[1])}  {c[2]}  [{job_state_style(j.state)}]{c[3]}[/]  {c[4]}  {c[5]}"
            console.print(Padding(line + (f"  {escape(c[6])}" if c[6] else ""), (0, 0, 0, 2)))
        return 0
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    for i, name in enumerate(heads):
        if i in fixed:
            table.add_column(name, no_wrap=True, min_width=widths[i])
        else:
            table.add_column(name, overflow="fold", min_width=min(widths[i], 8) if i == 1 else reason_room)
    for c, j in zip(cells, rows, strict=True):
        table.add_row(c[0], escape(c[1]), c[2], f"[{job_state_style(j.state)}]{c[3]}[/]", c[4], c[5], escape(c[6]))
    console.print(table)
    return 0


def cmd_job_show(args: argparse.Namespace) -> int:
    job = jobs.find_job(home(args), args.job_id)
    events, corrupt = split_corrupt(read_events(job.events_path))
    if args.json:
        print_json(job.to_json() | {"dir": str(job.dir), "events": events[-50:], "corrupt_lines": corrupt})
        return 0
    console.print(f"[bold]{job.id}[/]  {job.kind} in {escape(job.project)}  {escape(f'[{job.state}]')}")
    for key in ("pid", "created", "started", "ended", "reason"):
        value = getattr(job, key)
        if value is not None:
            console.print(f"  {key}: {escape(str(value))}")
    console.print(f"  args: {escape(str(job.args))}")
    if job.result:
        console.print(f"  result: {escape(str(job.result))}")
    console.print(f"  folder: {job.dir}")
    if corrupt:
        console.print(f"  [yellow]{corrupt} line(s) of {jobs.EVENTS_FILE} are not events; skipped[/]")
    for ev in events[-10:]:
        console.print(f"  [dim]{_clock(ev.get('t'))}[/] {escape(str(ev))}")
    return 0


def _clock(t) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if isinstance(t, (int, float)) else "--:--:--"


def cmd_job_log(args: argparse.Namespace) -> int:
    job = jobs.find_job(home(args), args.job_id)
    for text in follow.log(job, follow=args.follow):
        sys.stdout.write(text)
        sys.stdout.flush()
    if args.follow:
        console.print(f"[dim]-- job {jobs.load_job(job.dir).state} --[/]")
    return 0


def cmd_job_cancel(args: argparse.Namespace) -> int:
    job = jobs.find_job(home(args), args.job_id)
    if not job.readable:
        raise JobError(f"job {job.id} cannot be cancelled: {job.reason}")
    if not job.active:
        console.print(f"job {job.id} is already {job.state}")
        return 0
    grace = jobkinds.grace(job.kind) if args.grace is None else args.grace
    console.print(f"cancelling {job.id} (pid {job.pid}); up to {grace:g} s to save…")
    final = jobs.cancel_job(job, grace=grace)
    console.print(f"job {final.id}: {final.state}" + (f" ({escape(final.reason)})" if final.reason else ""))
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    p = open_project(args)
    return run_job(args, p, "selftest", spec.from_namespace(SELFTEST, args))
