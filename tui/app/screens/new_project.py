"""The new-project form: name, who A and B are, and the consent statement (required)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Button, Footer, Header, Input, Label, Static, TextArea

from core.errors import FacepairError
from core.project import projects
from tui.app.screens.base import FacepairScreen

WHY_CONSENT = (
    "Consent is required. facepair makes synthetic media of real people: record who agreed to "
    "what — e.g. \"Alice and Bob agreed in writing on 5 May to a face swap for a private video\". "
    "It is stored in project.toml, and every output is labelled as synthetic."
)


class NewProjectScreen(FacepairScreen):
    TITLE = "New project"
    HELP = ("Create a face-pair project. Person A is the footage (their face is replaced); person B "
            "is the face put on A. No consent statement, no project.")
    BINDINGS = [Binding("ctrl+s", "create", "Create", id="new.create", priority=True)]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with VerticalScroll(id="form"):
            yield Label("Project name")
            yield Input(placeholder="e.g. alice-bob", id="name")
            yield Label("Person A (the footage)")
            yield Input(placeholder="label for A", id="label-a")
            yield Label("Person B (the face put on A)")
            yield Input(placeholder="label for B", id="label-b")
            yield Label("Consent statement (required)")
            yield Static(WHY_CONSENT, id="why-consent", markup=False)
            yield TextArea(id="consent", soft_wrap=True)
            yield Label("Consent given by (comma-separated; default: both labels)")
            yield Input(placeholder="e.g. Alice, Bob", id="consent-by")
            yield Button("Create (ctrl+s)", id="create", variant="primary")
        yield Footer(compact=True)

    def setup(self) -> None:
        self.query_one("#name", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self.action_create()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.focus_next()

    def values(self) -> dict:
        by = [x.strip() for x in self.query_one("#consent-by", Input).value.split(",") if x.strip()]
        return {
            "name": self.query_one("#name", Input).value.strip(),
            "label_a": self.query_one("#label-a", Input).value,
            "label_b": self.query_one("#label-b", Input).value,
            "consent": self.query_one("#consent", TextArea).text,
            "consent_by": by or None,
        }

    def action_create(self) -> None:
        from tui.app.screens.project import ProjectScreen

        v = self.values()
        consent = self.query_one("#consent", TextArea)
        consent.set_class(not v["consent"].strip(), "-invalid")
        try:
            p = projects.create_project(self.app.home, v["name"], v["label_a"], v["label_b"], v["consent"],
                                        v["consent_by"])
        except FacepairError as e:
            self.app.report(e)
            if not v["consent"].strip():
                consent.focus()
            return
        except OSError as e:
            self.app.report(f"cannot create {self.app.home / v['name']}: {e}")
            return
        self.notify(f"created project {p.name} at {p.root}", markup=False)
        self.app.switch_screen(ProjectScreen(p.name))
