"""The first screen: every project in the home, with faces, training state and running jobs."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from core.errors import FacepairError
from core.studio import overview
from core.studio.removal import delete_project
from tui.app.screens.base import FacepairScreen
from tui.app.watch import fmt_loss
from tui.styles import job_state_style

COLUMNS = ("project", "A", "B", "faces A", "faces B", "step", "loss A", "loss B", "jobs", "last output")


def project_row(summary: dict) -> tuple:
    """One table row from `core.studio.overview.summarize` (or its error form)."""
    if "error" in summary:
        return (summary["name"], Text("unreadable", style="bold red"),
                "", "", "", "", "", "", "", "")
    t = summary["training"]
    running = ", ".join(sorted({j["kind"] for j in summary["running_jobs"]}))
    out = summary["last_output"]
    return (
        summary["name"], summary["labels"]["a"], summary["labels"]["b"],
        str(summary["faces"]["a"]), str(summary["faces"]["b"]),
        str(t["step"] or 0), fmt_loss(t["loss_a"]), fmt_loss(t["loss_b"]),
        Text(running, style=job_state_style("running")) if running else "-",
        Path(out).name if out else "-",
    )


class ProjectsScreen(FacepairScreen):
    TITLE = "Projects"
    HELP = ("Every face-pair project in the projects home. A project pairs person A's footage with "
            "person B's photos and records their consent. Open one to add sources, extract faces, "
            "train and convert.")
    BINDINGS = [
        Binding("enter", "open", "Open", id="projects.open", priority=True),
        Binding("n", "new", "New", id="projects.new"),
        Binding("d", "delete", "Delete", id="projects.delete"),
    ]

    def __init__(self):
        super().__init__()
        self.rows: list[tuple] = []

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="empty", markup=False)
        table = DataTable(id="projects", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Footer(compact=True)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "back":
            return False
        if action in ("open", "delete"):
            return bool(self.rows)
        return True

    def reload(self) -> None:
        try:
            summaries = overview.summarize_all(self.app.home)
        except OSError as e:
            self.app.report(f"cannot read the projects home {self.app.home}: {e}")
            summaries = []
        rows = [project_row(s) for s in summaries]
        empty = self.query_one("#empty", Static)
        empty.display = not rows
        if not rows:
            empty.update(f"No projects in {self.app.home}.\nPress n to create one (consent is required).")
        if rows == self.rows:
            return
        had_rows = bool(self.rows)
        self.rows = rows
        table = self.query_one("#projects", DataTable)
        selected = self.selected_name()
        table.clear()
        for row in rows:
            table.add_row(*row, key=row[0])
        names = [r[0] for r in rows]
        if selected in names:
            table.move_cursor(row=names.index(selected))
        if had_rows != bool(rows):
            self.refresh_bindings()

    def selected_name(self) -> str | None:
        table = self.query_one("#projects", DataTable)
        if not self.rows or table.cursor_row is None or not (0 <= table.cursor_row < len(self.rows)):
            return None
        return self.rows[table.cursor_row][0]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        from tui.app.screens.project import ProjectScreen

        name = self.selected_name()
        if name:
            self.app.push_screen(ProjectScreen(name))

    def action_new(self) -> None:
        from tui.app.screens.new_project import NewProjectScreen

        self.app.push_screen(NewProjectScreen())

    def action_delete(self) -> None:
        from tui.app.screens.confirm import ConfirmDialog

        name = self.selected_name()
        if not name:
            return
        root = self.app.home / name

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_project(self.app.home, name, unreadable_ok=True)  # asked below
            except FacepairError as e:
                self.app.report(e)
                return
            except OSError as e:
                self.app.report(f"cannot delete {root}: {e}")
                return
            self.notify(f"deleted {root}", markup=False)
            self.reload()

        self.app.push_screen(
            ConfirmDialog(f"Delete project {name!r} and everything in {root}?\n"
                          "Faces, model and outputs are deleted too. This cannot be undone.", yes="Delete"),
            answered,
        )
