"""Following a job in the terminal: a rich progress bar fed by the job's events."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from core.jobs import control as jobs
from core.jobs import follow
from tui.styles import LEVEL_STYLE, job_state_style


def describe_metrics(ev: dict) -> str:
    parts = []
    if ev.get("step") is not None:
        parts.append(f"step {ev['step']}")
    for key in ("loss_a", "loss_b"):
        if isinstance(ev.get(key), (int, float)):
            parts.append(f"{key} {ev[key]:.4f}")
    for key, unit in (("images_per_s", "img/s"), ("fps", "fps")):
        if isinstance(ev.get(key), (int, float)):
            parts.append(f"{ev[key]:.1f} {unit}")
    return "  ".join(parts)


def follow_job(job: jobs.Job, console: Console | None = None) -> int:
    """Render the job's events until it ends. Returns 0 on success, 1 on failure, 130 if cancelled."""
    console = console or Console(highlight=False)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    )
    task = progress.add_task(job.kind, total=None, info="")
    previews: set[str] = set()
    cancelled_here = False
    try:
        with progress:
            try:
                for ev in follow.events(job):
                    _render(ev, progress, task, console, previews)
            except KeyboardInterrupt:
                cancelled_here = True
                console.print(f"[yellow]cancelling {job.id} (it may save first)…[/]")
                jobs.cancel_job(job)
    except KeyboardInterrupt:
        jobs.cancel_job(job, grace=2)
    final = jobs.load_job(job.dir)
    line = f"[{job_state_style(final.state)}]{final.kind} {final.state}[/]"
    if final.reason:
        line += f": {escape(final.reason)}"
    console.print(line)
    if final.state == "failed":
        console.print(f"  log: {final.log_path}")
    if cancelled_here or final.state == "cancelled":
        return 130
    return 0 if final.state == "succeeded" else 1


def _render(ev: dict, progress: Progress, task, console: Console, previews: set[str]) -> None:
    kind = ev.get("type")
    if kind == "progress":
        fields = {"completed": ev.get("done", 0)}
        if ev.get("total") is not None:
            fields["total"] = ev["total"]
        if ev.get("stage"):
            fields["description"] = str(ev["stage"])
        info = []
        if isinstance(ev.get("fps"), (int, float)):
            info.append(f"{ev['fps']:.1f} fps")
        if ev.get("info"):
            info.append(str(ev["info"]))
        if info:
            fields["info"] = "  ".join(info)
        progress.update(task, **fields)
    elif kind == "metrics":
        progress.update(task, info=describe_metrics(ev))
    elif kind == "message":
        style = LEVEL_STYLE.get(ev.get("level", "info"), "")
        text = escape(str(ev.get("text", "")))
        stamp = time.strftime("%H:%M:%S", time.localtime(ev.get("t", time.time())))
        console.print(f"[dim]{stamp}[/] [{style}]{text}[/]" if style else f"[dim]{stamp}[/] {text}", markup=True, soft_wrap=True)
    elif kind == "preview" and str(ev.get("path")) not in previews:
        # A training job rewrites the same preview file: name it once, not at every refresh.
        previews.add(str(ev.get("path")))
        console.print(f"[dim]preview:[/] {escape(str(ev.get('path')))}", soft_wrap=True)
