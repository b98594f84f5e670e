"""A yes/no question before anything destructive (delete a project, cancel a job, remove a source),
and the one cancel question every screen that follows a job asks (`confirm_cancel`)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from core.errors import JobError
from core.jobs import control as jobs
from core.jobs import kinds as jobkinds


class ConfirmDialog(ModalScreen[bool]):
    """Dismisses with True on y (or the Yes button), False on n or escape."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "No", id="confirm.escape", show=False),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No"):
        super().__init__()
        self.question = question
        self.yes, self.no = yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(self.question, id="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button(f"{self.no} (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


def confirm_cancel(app, job: jobs.Job) -> None:
    """Ask, then cancel in the background (the UI never waits for the grace period)."""
    try:
        current = jobs.load_job(job.dir)
    except JobError as e:  # job.json turned unreadable
        app.notify(f"job {job.id} cannot be cancelled: {e}", severity="error", markup=False)
        return
    if not current.active:
        app.notify(f"job {job.id} is already {current.state}", markup=False)
        return

    def answered(yes: bool | None) -> None:
        if yes:
            app.cancel_job(current)

    app.push_screen(ConfirmDialog(
        f"Cancel {current.kind} job {current.id} in {current.project}?\n"
        f"It gets SIGTERM (and may save first), then SIGKILL after {jobkinds.grace(current.kind):g} s.",
        yes="Cancel job", no="Keep it"),
        answered)
