"""Training: start / stop / resume the project's training job and watch it live — a loss chart,
the newest preview grid, images/s, step, elapsed, ETA and device.

The screen follows the project's newest training job (a running one first), whichever process
started it: a job started from another terminal or before this app was opened shows up on the
next reload. The `selftest` kind writes the same metrics and is followed the same way.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, Header, Static

from core.errors import FacepairError
from core.jobs import control as jobs
from core.project import projects
from tui.app.screens.base import FacepairScreen
from tui.app.watch import TRAINING_KINDS, JobWatch, fmt_duration, fmt_loss, newest_job
from tui.app.widgets.event_tail import EventTail
from tui.app.widgets.loss_chart import LossChart
from tui.app.widgets.picture import Picture
from tui.styles import job_state_style


def status_text(watch: JobWatch | None) -> Text:
    """The two status lines above the chart, from the job's newest events (no wall clock)."""
    if watch is None:
        return Text("No training job yet. Press s to start one (r resumes with the last settings).", style="dim")
    d = watch.digest
    job = watch.job
    state = watch.state
    t = Text()
    t.append(f"{job.kind if job else '?'} ", style="bold")
    t.append(watch.id, style="dim")
    t.append(f"  {state}", style=job_state_style(state))
    args = job.args if job else {}
    for key in ("preset", "batch"):
        if args.get(key) is not None:
            t.append(f"  {key} {args[key]}")
    m = d.metrics or {}
    t.append("\n")
    t.append(f"step {m.get('step', '-')}", style="bold")
    t.append(f"  A {fmt_loss(m.get('loss_a'))}  B {fmt_loss(m.get('loss_b'))}")
    if isinstance(m.get("images_per_s"), (int, float)):
        t.append(f"  {m['images_per_s']:.1f} img/s")
    t.append(f"  elapsed {fmt_duration(d.elapsed_s())}")
    if watch.active:
        t.append(f"  ETA {fmt_duration(d.eta_s())}")
    if m.get("device"):
        t.append(f"  {m['device']}")
    if job is not None and job.state == "failed" and job.reason:
        t.append(f"\n{job.reason}", style="red")
    return t


class TrainingScreen(FacepairScreen):
    TITLE = "Training"
    HELP = ("Train the project's model: one encoder shared by A and B, one decoder each. Stopping "
            "is graceful: the job saves a checkpoint first, and starting again resumes from it. The "
            "chart shows loss A and loss B over steps (raw and smoothed; l toggles a log scale, v "
            "cycles raw/smoothed); the picture is the newest preview grid.")
    BINDINGS = [
        Binding("s", "start", "Start", id="training.start"),
        Binding("r", "resume", "Resume", id="training.resume"),
        Binding("x", "stop", "Stop", id="training.stop"),
        Binding("l", "log_scale", "Log scale", id="training.log"),
        Binding("v", "view", "Raw/smooth", id="training.view"),
    ]

    def __init__(self, name: str):
        super().__init__()
        self.project_name = name
        self.project: projects.Project | None = None
        self.watch: JobWatch | None = None
        self._shown_version: object = None
        self._was_active: bool | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="train-status")
        with Horizontal(id="train-body"):
            yield LossChart(id="chart")
            yield Picture("no preview yet", id="preview")
        yield EventTail(id="train-notes")
        yield Footer(compact=True)

    def setup(self) -> None:
        self.sub_title = f"{self.project_name} — training"

    def reload(self) -> None:
        try:
            self.project = projects.load_project(self.app.home, self.project_name)
        except FacepairError as e:
            self.project = None
            self.query_one("#train-status", Static).update(Text(str(e), style="red"))
            return
        job = newest_job(self.project, TRAINING_KINDS)
        if job is not None and (self.watch is None or self.watch.dir != job.dir):
            self.follow(job)

    def follow(self, job: jobs.Job) -> None:
        self.watch = JobWatch(job.dir)
        self._shown_version = None
        self.query_one("#preview", Picture).show_text("no preview yet")

    def poll(self) -> None:
        if self.project is None:
            return
        w = self.watch
        if w is not None:
            w.poll()
        version = (id(w), w.digest.version) if w else None
        if version == self._shown_version:
            return
        self._shown_version = version
        self.query_one("#train-status", Static).update(status_text(w))
        active = w is not None and w.active
        if active != self._was_active:
            self._was_active = active
            self.refresh_bindings()
        if w is None:
            return
        d = w.digest
        self.query_one("#chart", LossChart).update_from(d.loss, version)
        if d.preview and d.preview.get("path"):
            self.query_one("#preview", Picture).show_path(d.preview["path"], key=(d.preview.get("step"),
                                                                                   d.preview.get("t")))
        self.query_one("#train-notes", EventTail).follow(d)

    # ---- actions ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "stop":
            return self.watch is not None and self.watch.active
        if action in ("start", "resume"):
            return self.project is not None and not (self.watch is not None and self.watch.active)
        return True

    def action_start(self) -> None:
        from tui.app.screens.stage_options import train_dialog

        if self.project is None:
            return
        if not self.app.kind_available("train"):
            self.app.notify(self.app.unavailable("train"), title="not available", severity="warning", markup=False)
            return
        p = self.project

        def answered(args: dict | None) -> None:
            if args is not None:
                self._start(p, args)

        self.app.push_screen(train_dialog(p, self.last_train_args()), answered)

    def action_resume(self) -> None:
        if self.project is None:
            return
        if not self.app.kind_available("train"):
            self.app.notify(self.app.unavailable("train"), title="not available", severity="warning", markup=False)
            return
        args = self.last_train_args()
        if args is None:
            self.action_start()
            return
        self._start(self.project, args)

    def _start(self, p: projects.Project, args: dict) -> None:
        job = self.app.start_job(p, "train", args)
        if job is not None:
            self.follow(job)
            self.poll()
            self.refresh_bindings()

    def last_train_args(self) -> dict | None:
        if self.project is None:
            return None
        for j in jobs.project_jobs(self.project):
            if j.kind == "train":
                return dict(j.args)
        return None

    def action_stop(self) -> None:
        from tui.app.screens.confirm import ConfirmDialog

        w = self.watch
        if w is None or w.job is None or not w.active:
            return
        job = w.job

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.cancel_job(job)  # its kind's grace: time to save a checkpoint

        self.app.push_screen(ConfirmDialog(
            f"Stop {job.kind} job {job.id}?\nIt saves a checkpoint first; starting again resumes from it.",
            yes="Stop"), answered)

    def action_log_scale(self) -> None:
        self.query_one("#chart", LossChart).toggle_log()

    def action_view(self) -> None:
        self.query_one("#chart", LossChart).cycle_view()
