"""The add-source dialog: which side, a path (with completion), copy into the project or not."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

from tui.app.widgets.path_input import PathInput


@dataclass(frozen=True)
class SourceRequest:
    side: str
    path: str
    copy: bool


class AddSourceDialog(ModalScreen[SourceRequest | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="source.cancel"),
        Binding("ctrl+s", "submit", "Add", id="source.add", priority=True),
    ]

    def __init__(self, side: str = "a", labels: dict[str, str] | None = None):
        super().__init__()
        self.side = side
        self.labels = labels or {"a": "A", "b": "B"}

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static("Add a source: a video, an image or a folder of images", classes="dialog-title")
            with RadioSet(id="side"):
                yield RadioButton(f"A — {self.labels['a']}", value=self.side == "a", id="side-a")
                yield RadioButton(f"B — {self.labels['b']}", value=self.side == "b", id="side-b")
            yield Label("Path (Tab completes)")
            yield PathInput(id="path")
            yield Checkbox("copy into the project (instead of linking by path)", id="copy")
            with Horizontal(classes="buttons"):
                yield Button("Add (ctrl+s)", id="add", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", PathInput).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add":
            self.action_submit()
        else:
            self.action_cancel()

    def action_submit(self) -> None:
        path = self.query_one("#path", PathInput).value.strip()
        if not path:
            self.notify("type the path of a video, an image or a folder", severity="warning")
            return
        side = "b" if self.query_one("#side-b", RadioButton).value else "a"
        self.dismiss(SourceRequest(side, path, self.query_one("#copy", Checkbox).value))

    def action_cancel(self) -> None:
        self.dismiss(None)
