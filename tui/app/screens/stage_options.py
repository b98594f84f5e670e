"""Option dialogs for starting extraction, training and an export, built from the kinds' declared specs.

The fields are the options of `core/extract/options.py`, `core/train/options.py` and
`core/export/options.py` that carry a form label, so the dialog, `facepair extract`/`facepair train` and the job's own check agree;
reading a spec imports neither dlib nor JAX.
"""

from __future__ import annotations

from functools import lru_cache

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from core.export.options import SPEC as EXPORT
from core.extract.options import SPEC as EXTRACT
from core.jobs import kinds as jobkinds
from core.project.projects import Project
from core.train.options import SPEC as TRAIN
from tui.app.widgets.options_form import Field, OptionError, OptionsForm, fields_of


@lru_cache(maxsize=32)
def job_arg_names(kind: str) -> frozenset[str] | None:
    """The arguments a registered kind's job takes (its spec's options), or None when the kind is
    not registered or declares no spec (then every field is offered)."""
    spec = jobkinds.spec(kind) if kind in jobkinds.KINDS else None
    return None if spec is None else frozenset(spec.by_name)


def fields_for(kind: str, fields: list[Field]) -> list[Field]:
    """The fields a registered kind's job takes (all of them when it declares no spec)."""
    names = job_arg_names(kind)
    return fields if names is None else [f for f in fields if f.name in names]


class OptionsDialog(ModalScreen[dict | None]):
    """Dismisses with the job's arguments, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="options.cancel"),
        Binding("ctrl+s", "submit", "Start", id="options.start", priority=True),
    ]

    def __init__(self, title: str, fields: list[Field], values: dict | None = None, note: str = ""):
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.values = values or {}
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog options-dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            if self.note:
                yield Static(self.note, classes="dialog-note", markup=False)
            with VerticalScroll(classes="options-scroll"):
                yield OptionsForm(self.fields, self.values, id="options")
            with Horizontal(classes="buttons"):
                yield Button("Start (ctrl+s)", id="start", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_submit()
        else:
            self.action_cancel()

    def action_submit(self) -> None:
        try:
            args = self.query_one("#options", OptionsForm).values()
        except OptionError as e:
            self.app.report(e)
            return
        self.dismiss(args)

    def action_cancel(self) -> None:
        self.dismiss(None)


# ---- the stages' options (from their specs) ---------------------------------------------------

def preset_names() -> tuple[str, ...]:
    """The model presets by name (core.jaxmodels.presets is plain dataclasses: no JAX import)."""
    try:
        from core.jaxmodels.presets import PRESETS
    except ImportError:
        return ("tiny", "lite", "original", "hq128", "hq256")
    return tuple(PRESETS)


def extract_fields() -> list[Field]:
    return fields_of(EXTRACT)


def train_fields() -> list[Field]:
    return fields_of(TRAIN, {"preset": preset_names()})


def extract_dialog(project: Project, values: dict | None = None) -> OptionsDialog:
    return OptionsDialog(f"Extract faces — {project.name}", extract_fields(), values,
                         note="Detect, align and crop the faces of every source; re-running resumes.")


def train_dialog(project: Project, values: dict | None = None) -> OptionsDialog:
    return OptionsDialog(f"Train — {project.name}", train_fields(), values,
                         note="Resumes from the newest checkpoint of the same preset.")


def export_dialog(project: Project, values: dict | None = None) -> OptionsDialog:
    return OptionsDialog(f"Export the model — {project.name}", fields_of(EXPORT), values,
                         note="A .dfm for DeepFaceLive / FaceFusion, or plain ONNX; checked with ONNX Runtime. "
                              "The file says that what it makes is synthetic.")
