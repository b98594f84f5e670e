"""`?`: what the current screen is for and every key it answers to (the footer shows only some)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

GENERAL = (
    "facepair runs every long task (extraction, training, conversion) as a detached job: quitting "
    "this app or losing the SSH connection never stops one, and reopening it — from any terminal — "
    "shows running jobs live. Ctrl+P opens the command palette with this screen's actions; Ctrl+T "
    "switches between the dark and the light theme."
)


def keys_table(screen: Screen) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("key", no_wrap=True)
    table.add_column("action")
    seen = set()
    for _key, active in screen.active_bindings.items():
        b = active.binding
        if not b.description or b.id is None or (b.action, b.description) in seen:
            continue
        seen.add((b.action, b.description))
        text = Text(b.description, style="" if active.enabled else "dim")
        table.add_row(screen.app.get_key_display(b), text)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="help.close"),
        Binding("question_mark", "close", "Close", id="help.close2", show=False),
    ]

    def __init__(self, about: Screen):
        super().__init__()
        self.about = about

    def compose(self) -> ComposeResult:
        title = getattr(self.about, "TITLE", None) or type(self.about).__name__
        with VerticalScroll(id="help", classes="dialog"):
            yield Static(Text(f"Help — {title}", style="bold"))
            if getattr(self.about, "HELP", ""):
                yield Static(self.about.HELP, markup=False, classes="help-text")
            yield Static(keys_table(self.about), classes="help-keys")
            yield Static(GENERAL, markup=False, classes="help-text")
            yield Static(Text("escape or ? closes this", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
