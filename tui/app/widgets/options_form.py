"""A form for a job's options, built from a list of `Field`s (one per job argument).

The fields of a kind's form come from its declared spec (`fields_of`, core.jobs.spec); the values
come back as the job's JSON arguments; an empty optional field is left out so the job's own
default applies (the same default as the CLI's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Checkbox, Input, Label, Select

from core.jobs.spec import KindSpec, form_fields
from tui.app.widgets.path_input import PathInput


@dataclass(frozen=True)
class Field:
    name: str  # the job argument
    label: str
    kind: str = "text"  # choice | int | float | bool | path | paths | text
    default: object = None
    choices: tuple = ()
    optional: bool = True

    @property
    def widget_id(self) -> str:
        return "opt-" + self.name.replace("_", "-")


def fields_of(spec: KindSpec, choices: dict[str, tuple] | None = None, order: tuple[str, ...] = ()) -> list[Field]:
    """The form's fields for a kind's spec: its options with a form label, in the spec's order (or
    with the names in `order` first, in that order: a form may group what the CLI lists apart)."""
    fields = [Field(**asdict(f)) for f in form_fields(spec, choices)]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(fields, key=lambda f: rank.get(f.name, len(rank)))


class OptionError(ValueError):
    pass


def parse_value(field: Field, raw) -> object:
    """The JSON argument for one field's raw widget value; None means 'leave it out'."""
    if field.kind == "bool":
        return bool(raw)
    if field.kind == "choice":
        return None if raw in (None, Select.NULL) else raw
    text = (raw or "").strip()
    if not text:
        if not field.optional:
            raise OptionError(f"{field.label}: a value is required")
        return None
    if field.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise OptionError(f"{field.label}: {text!r} is not a whole number") from None
    if field.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise OptionError(f"{field.label}: {text!r} is not a number") from None
    if field.kind == "paths":
        return [p for p in text.split(",") if p.strip()] or None
    return text


class OptionsForm(Vertical):
    DEFAULT_CSS = """
    OptionsForm { height: auto; }
    OptionsForm > Label { margin-top: 1; }
    OptionsForm > Input, OptionsForm > Select { width: 100%; }
    """

    def __init__(self, fields: list[Field], values: dict | None = None, *, id: str | None = None):
        super().__init__(id=id)
        self.fields = fields
        self.initial = dict(values or {})

    def _initial(self, f: Field):
        return self.initial.get(f.name, f.default)

    def compose(self) -> ComposeResult:
        for f in self.fields:
            value = self._initial(f)
            if f.kind == "bool":
                yield Checkbox(f.label, value=bool(value), id=f.widget_id)
                continue
            yield Label(f.label)
            if f.kind == "choice":
                options = [(str(c), c) for c in f.choices]
                yield Select(options, value=value if value in f.choices else Select.NULL,
                             allow_blank=f.optional, id=f.widget_id)
            elif f.kind in ("path", "paths"):
                yield PathInput("" if value is None else str(value), id=f.widget_id)
            else:
                kind = {"int": "integer", "float": "number"}.get(f.kind, "text")
                yield Input("" if value is None else str(value), type=kind, id=f.widget_id,
                            placeholder="default" if f.optional else "")

    def values(self) -> dict:
        """The job arguments; raises OptionError naming the first bad field."""
        out = {}
        for f in self.fields:
            widget = self.query_one(f"#{f.widget_id}")
            value = parse_value(f, widget.value)
            if value is not None and not (f.kind == "bool" and value == bool(f.default) and f.optional):
                out[f.name] = value
        return out
