"""Option dialogs for starting extraction and training, matched to the job functions' arguments.

The fields follow the CLI's options (`facepair extract`, `facepair train`). A field is offered only
when the registered job function takes that argument — read from its source with `ast`, so
opening a dialog never imports dlib or JAX into the TUI.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import lru_cache

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from core.jobs import kinds as jobkinds
from core.project.projects import Project
from tui.app.widgets.options_form import Field, OptionError, OptionsForm


@lru_cache(maxsize=32)
def job_arg_names(kind: str) -> frozenset[str] | None:
    """The keyword arguments of kind's `run(ctx, **args)` function, or None when unknown
    (then every field is offered)."""
    target = jobkinds.KINDS.get(kind)
    if not target:
        return None
    module, _, func = target.partition(":")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == func:
            a = node.args
            if a.kwarg is not None:
                return None
            return frozenset(x.arg for x in a.posonlyargs + a.args + a.kwonlyargs)
    return None


def fields_for(kind: str, fields: list[Field]) -> list[Field]:
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


# ---- the stages' options (names = the job functions' arguments) -------------------------------

EXTRACT_FIELDS = [  # `facepair extract` (tui/commands/extract.py) ↔ core.extract.pipeline.run_job
    Field("side", "Side", "choice", "both", ("a", "b", "both"), optional=False),
    Field("detector", "Detector (hog: fast, frontal; cnn: slower, turned and dim faces)", "choice", "hog",
          ("hog", "cnn"), optional=False),
    Field("size", "Crop size in px, 64..1024 (empty: 256)", "int"),
    Field("every", "Use every Nth video frame (empty: 1)", "int"),
    Field("min_face", "Smallest face in px (empty: automatic)", "int"),
    Field("reference", "Reference photos of the side's person (comma-separated; with side a or b)", "paths"),
    Field("identity", "Keep only faces of the reference person (else of the side's first confident face)",
          "bool", True),
    Field("identity_threshold", "Identity threshold (descriptor distance; empty: 0.6)", "float"),
    Field("blur", "Drop faces blurrier than (variance of the Laplacian; 0 keeps all; empty: 20)", "float"),
    Field("smooth", "Smooth video landmarks in time", "bool", True),
    Field("detect_every", "Full detection every K video frames (empty: 10)", "int"),
    Field("workers", "Worker processes (empty: one per core)", "int"),
    Field("fresh", "Forget earlier results of these sides and start over", "bool", False),
]

def preset_names() -> tuple[str, ...]:
    """The model presets by name (core.jaxmodels.presets is plain dataclasses: no JAX import)."""
    try:
        from core.jaxmodels.presets import PRESETS
    except ImportError:
        return ("tiny", "lite", "original", "hq128", "hq256")
    return tuple(PRESETS)


TRAIN_FIELDS = [
    Field("preset", "Preset (empty: the checkpoint's, else the default)", "choice", None, preset_names()),
    Field("batch", "Batch size (per side)", "int"),
    Field("steps", "Steps (empty: until stopped)", "int"),
    Field("lr", "Learning rate", "float"),
    Field("save_every", "Save every N steps", "int"),
    Field("preview_every", "Preview every N steps", "int"),
]


def extract_dialog(project: Project, values: dict | None = None) -> OptionsDialog:
    return OptionsDialog(f"Extract faces — {project.name}", fields_for("extract", EXTRACT_FIELDS), values,
                         note="Detect, align and crop the faces of every source; re-running resumes.")


def train_dialog(project: Project, values: dict | None = None) -> OptionsDialog:
    return OptionsDialog(f"Train — {project.name}", fields_for("train", TRAIN_FIELDS), values,
                         note="Resumes from the newest checkpoint of the same preset.")
