"""Every job of every project: state, progress, age; open one to follow it, cancel with a yes."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from core.jobs import control as jobs
from core.jobs.events import last_event
from tui.app.screens.base import FacepairScreen
from tui.app.screens.confirm import confirm_cancel
from tui.app.watch import TRAINING_KINDS, fmt_duration, fmt_progress
from tui.styles import job_state_style

COLUMNS = ("job", "project", "kind", "state", "progress", "age", "reason")
RECENT_S = 86400


class JobsScreen(FacepairScreen):
    TITLE = "Jobs"
    HELP = ("Every job of every project, newest first (finished jobs older than a day are hidden; a "
            "shows them). Jobs run detached: they keep running when this app quits. Open one to "
            "follow its events and log; cancel sends SIGTERM (the job may save) and SIGKILL after "
            "a grace period.")
    BINDINGS = [
        Binding("enter", "open", "Open", id="jobs.open", priority=True),
        Binding("c", "cancel", "Cancel job", id="jobs.cancel"),
        Binding("a", "toggle_all", "All/recent", id="jobs.all"),
    ]

    def __init__(self, project: str | None = None):
        super().__init__()
        self.only_project = project
        self.show_all = False
        self.jobs: list[jobs.Job] = []
        self.rows: list[tuple] = []
        self._final_progress: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="jobs-empty", markup=False)
        table = DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Footer(compact=True)

    def setup(self) -> None:
        self.sub_title = f"jobs of {self.only_project}" if self.only_project else "all jobs"

    def _progress(self, job: jobs.Job) -> str:
        """The newest progress (tail read); cached once a job is final, so old jobs cost nothing."""
        if job.id in self._final_progress:
            return self._final_progress[job.id]
        text = fmt_progress(last_event(job.events_path, "progress"))
        if text == "-" and job.kind in TRAINING_KINDS:
            m = last_event(job.events_path, "metrics")
            if m and m.get("step") is not None:
                text = f"step {m['step']}"
        if not job.active:
            self._final_progress[job.id] = text
        return text

    def poll(self) -> None:
        """Jobs change state quickly: the table is re-read on every tick (small files only)."""
        now = self.app.clock()
        found = jobs.all_jobs(self.app.home)
        if self.only_project:
            found = [j for j in found if j.project == self.only_project]
        if not self.show_all:
            found = [j for j in found if j.active or not j.readable or now - _created_ts(j, now) < RECENT_S]
        rows = [
            (j.id, j.project, j.kind, Text(j.state, style=job_state_style(j.state)), self._progress(j),
             fmt_duration(now - _created_ts(j, now)), j.reason or "")
            for j in found
        ]
        empty = self.query_one("#jobs-empty", Static)
        empty.display = not rows
        if not rows:
            empty.update("No jobs yet." + ("" if self.show_all else " (a shows finished jobs older than a day)"))
        self.jobs = found
        if _plain(rows) == _plain(self.rows):
            return
        had = bool(self.rows)
        self.rows = rows
        table = self.query_one("#jobs", DataTable)
        selected = self.selected_id()
        table.clear()
        for row in rows:
            table.add_row(*row, key=row[0])
        ids = [r[0] for r in rows]
        if selected in ids:
            table.move_cursor(row=ids.index(selected))
        if had != bool(rows):
            self.refresh_bindings()

    def selected_job(self) -> jobs.Job | None:
        table = self.query_one("#jobs", DataTable)
        row = table.cursor_row
        if not self.jobs or row is None or not (0 <= row < len(self.jobs)):
            return None
        return self.jobs[row]

    def selected_id(self) -> str | None:
        job = self.selected_job()
        return job.id if job else None

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("open", "cancel"):
            return bool(self.rows)
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        from tui.app.screens.job import JobScreen

        job = self.selected_job()
        if job is not None:
            self.app.push_screen(JobScreen(job.dir))

    def action_cancel(self) -> None:
        job = self.selected_job()
        if job is not None:
            confirm_cancel(self.app, job)

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.notify("showing all jobs" if self.show_all else "showing running and recent jobs")
        self.poll()


def _created_ts(job: jobs.Job, default: float) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(job.created).timestamp()
    except ValueError:
        return default


def _plain(rows: list[tuple]) -> list[tuple]:
    return [tuple(str(c) for c in r) for r in rows]
