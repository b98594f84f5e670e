"""The faces screen's dialogs: choose the sort (`o`), type a filter (`/`), and a face's source frame
with its box (`enter`). Each sends its answer back; the faces screen does the rest."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from core.errors import FacepairError
from tui.app.widgets.picture import Picture


class SortDialog(ModalScreen[str | None]):
    """The sort keys with what each sorts by; enter picks one (the direction stays; `r` on the
    faces screen reverses it)."""

    BINDINGS = [Binding("escape", "close", "Close", id="faces.sort.close")]

    def __init__(self, keys: dict[str, str], current: str, descending: bool):
        super().__init__()
        self.keys, self.current, self.descending = keys, current, descending

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="sort-dialog"):
            yield Static("Sort the faces by", classes="dialog-title")
            options = [Option(Text.assemble((k.ljust(9), "bold"), (v, "dim")), id=k) for k, v in self.keys.items()]
            yield OptionList(*options, id="sort-keys")
            yield Static(f"now: {self.current} {'descending' if self.descending else 'ascending'} · "
                         "enter picks · r on the faces screen reverses", classes="dialog-note")

    def on_mount(self) -> None:
        keys = self.query_one("#sort-keys", OptionList)
        keys.highlighted = list(self.keys).index(self.current) if self.current in self.keys else 0
        keys.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)


class FilterDialog(ModalScreen[str | None]):
    """A --where expression or a source id; `check(text)` raises a FacepairError with the words to
    show (the dialog stays open), else the dialog closes with the text ("" clears the filter)."""

    BINDINGS = [Binding("escape", "close", "Close", id="faces.filter.close")]

    def __init__(self, current: str, check: Callable[[str], object], sources: list[str]):
        super().__init__()
        self.current, self.check, self.sources = current, check, sources

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="filter-dialog"):
            yield Static("Filter the faces", classes="dialog-title")
            yield Static("conditions KEY OP VALUE joined by , or and (e.g. blur<30, |yaw|>40, identity>0.55), "
                         "or a source id; empty shows every face", classes="dialog-note")
            yield Input(self.current, id="filter-text", placeholder="blur<30")
            yield Static("", id="filter-error")
            if self.sources:
                yield Static("sources: " + ", ".join(self.sources), classes="dialog-note", markup=False)

    def on_mount(self) -> None:
        self.query_one("#filter-text", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        try:
            self.check(text)
        except FacepairError as e:
            self.query_one("#filter-error", Static).update(Text(str(e), style="red"))
            return
        self.dismiss(text)

    def action_close(self) -> None:
        self.dismiss(None)


class FrameScreen(ModalScreen[None]):
    """A face's source frame with its box and landmarks, read in a thread (a frame deep in a long
    video takes a moment to reach). `views` is the screen's core.faces.views.FaceViews."""

    BINDINGS = [Binding("escape", "close", "Close", id="faces.frame.close"),
                Binding("enter", "close", "Close", id="faces.frame.close2", show=False)]

    def __init__(self, views, name: str):
        super().__init__()
        self.views, self.face_name = views, name
        self.loaded = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="frame-dialog"):
            yield Static(Text(f"{self.face_name.removesuffix('.png')} in its source", style="bold"), id="frame-title")
            yield Picture("reading the frame…", id="frame-picture")
            yield Static("", id="frame-caption")

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="frame", exit_on_error=False)
    def load(self) -> None:
        try:
            view = self.views.frame(self.face_name)
        except (FacepairError, OSError) as e:
            self.app.call_from_thread(self._show, None, str(e))
            return
        self.app.call_from_thread(self._show, view, None)

    def _show(self, view, problem: str | None) -> None:
        from PIL import Image

        self.loaded = True
        caption = self.query_one("#frame-caption", Static)
        if view is None:
            self.query_one("#frame-picture", Picture).show_text(problem or "cannot read the frame")
            return
        self.query_one("#frame-picture", Picture).show_image(Image.fromarray(view.image))
        x0, y0, x1, y1 = view.box
        caption.update(Text.assemble((view.path, "bold"), f" · frame {view.frame} · box {x0},{y0}–{x1},{y1}",
                                     ("  esc closes", "dim")))

    def action_close(self) -> None:
        self.dismiss(None)
