"""One job, followed live: state, progress, its loss chart when it writes metrics, its notable
events and its log (stdout/stderr), all read incrementally from the job's folder."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, ProgressBar, Static

from core.jobs import control as jobs
from tui.app.screens.base import FacepairScreen
from tui.app.screens.confirm import confirm_cancel
from tui.app.watch import JobWatch, LogTail, fmt_duration, fmt_loss, fmt_progress
from tui.app.widgets.event_tail import EventTail
from tui.app.widgets.loss_chart import LossChart
from tui.styles import job_state_style


def job_header(watch: JobWatch) -> Text:
    job = watch.job
    t = Text()
    if job is None:
        t.append(watch.error or f"{watch.dir} cannot be read", style="red")
        return t
    t.append(f"{job.kind} ", style="bold")
    t.append(f"in {job.project}  ")
    t.append(job.state, style=job_state_style(job.state))
    if job.reason:
        t.append(f" — {job.reason}", style="red" if job.state == "failed" else "")
    d = watch.digest
    p = d.progress
    t.append("\n")
    if p:
        t.append(f"{p.get('stage') or 'progress'} {fmt_progress(p)} {p.get('unit') or ''}".rstrip())
        if isinstance(p.get("fps"), (int, float)):
            t.append(f"  {p['fps']:.1f} fps")
    m = d.metrics
    if m and m.get("step") is not None:
        t.append(f"{'  ' if p else ''}step {m['step']}  A {fmt_loss(m.get('loss_a'))}  B {fmt_loss(m.get('loss_b'))}")
    t.append(f"  elapsed {fmt_duration(d.elapsed_s())}")
    if watch.active:
        t.append(f"  ETA {fmt_duration(d.eta_s())}")
    if job.result:
        t.append("\nresult: " + ", ".join(f"{k} {v}" for k, v in job.result.items()))
    return t


class JobScreen(FacepairScreen):
    TITLE = "Job"
    HELP = ("One job followed live from its folder (job.json, events.jsonl, log.txt): events on the "
            "left, the log on the right, and a loss chart when the job writes training metrics. "
            "Cancelling asks first.")
    BINDINGS = [
        Binding("c", "cancel", "Cancel job", id="job.cancel"),
        Binding("l", "log_scale", "Log scale", id="job.log", show=False),
    ]

    def __init__(self, job_dir: Path):
        super().__init__()
        self.watch = JobWatch(Path(job_dir))
        self.log_tail = LogTail(Path(job_dir) / jobs.LOG_FILE)
        self._shown: object = None
        self._was_active: bool | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="job-header")
        yield ProgressBar(id="job-progress", show_eta=False)
        chart = LossChart(id="job-chart")
        chart.display = False
        yield chart
        with Horizontal(id="job-tails"):
            with Vertical():
                yield Static("events", classes="pane-title")
                yield EventTail(id="job-events")
            with Vertical():
                yield Static("log", classes="pane-title")
                yield EventTail(id="job-log")
        yield Footer(compact=True)

    def setup(self) -> None:
        self.sub_title = self.watch.id

    def poll(self) -> None:
        w = self.watch
        w.poll()
        lines = self.log_tail.read_new()
        if lines:
            self.query_one("#job-log", EventTail).add_lines(lines)
        version = w.digest.version
        if version == self._shown:
            return
        self._shown = version
        d = w.digest
        self.query_one("#job-header", Static).update(job_header(w))
        bar = self.query_one("#job-progress", ProgressBar)
        p = d.progress
        # no total, no bar (an indeterminate bar animates: noise on a screen people leave open)
        bar.display = bool(p and p.get("total"))
        if bar.display:
            bar.update(total=p["total"], progress=p.get("done") or 0)
        chart = self.query_one("#job-chart", LossChart)
        if len(d.loss):
            chart.display = True
            chart.update_from(d.loss, version)
        self.query_one("#job-events", EventTail).follow(d)
        if self._was_active != w.active:
            self._was_active = w.active
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "cancel":
            return self.watch.active
        return True

    def action_cancel(self) -> None:
        if self.watch.job is not None:
            confirm_cancel(self.app, self.watch.job)

    def action_log_scale(self) -> None:
        self.query_one("#job-chart", LossChart).toggle_log()
