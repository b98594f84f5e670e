"""A job kind's declared options: one `KindSpec` per kind, and everything derived from it.

A kind's spec says which arguments its job takes (name, type, default, allowed values and range,
help text, command-line flag, TUI form label), whether it writes the model, which locks it takes
and how long a cancel waits before SIGKILL. The command line's arguments (`add_arguments`), the
TUI's option forms (`form_fields`), their checks and core's check before a job starts (`validate`)
are all derived from it, so they cannot disagree.

Light on purpose (argparse and dataclasses only: no numpy, JAX, dlib or Textual): `--help` and the
TUI import the specs without loading a pipeline. Each kind's spec sits beside its pipeline in
`core/<stage>/options.py`; `core.jobs.kinds` finds it by name.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

from core.errors import FacepairError

DEFAULT_GRACE_S = 10.0  # seconds from SIGTERM to SIGKILL for a kind that says nothing else

_TYPE_WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false",
               list: "a list", dict: "an object"}


class OptionError(FacepairError):
    """A job option has a wrong type, an unknown value or is out of range (names the option)."""


@dataclass(frozen=True)
class Option:
    """One argument of a job kind's function, as every front end shows and checks it.

    `help` and `label` may hold `{default}` (the default in words: `auto` when the default is
    None, i.e. the job decides), `{min}` and `{max}`."""

    name: str  # the job function's keyword argument
    type: type | tuple = str  # int, float, str, bool, list (of text), dict; a tuple: any of them
    default: object = None
    help: str = ""  # the command line's help
    choices: tuple = ()  # the values a job accepts (empty: any of the type)
    offered: tuple | None = None  # the values the CLI and the form offer, when fewer than `choices`
    min: float | None = None
    max: float | None = None
    above_min: bool = False  # `min` itself is refused: more than min
    out_of_range: str = ""  # the refusal's words, with {value}, {min}, {max}
    auto: str = ""  # what an unset default means, in words
    nullable: bool | None = None  # None is accepted (default: when the default is None)
    flag: str | None = ""  # "" → --name-with-dashes; None: not on the command line
    short: str | None = None  # e.g. "-i"
    negate: str | None = None  # a bool's --no-… flag (alone: the option is on unless it is given)
    metavar: str | None = None
    nargs: str | None = None  # "+" for a list
    required: bool = False  # a job cannot do without it (a required flag on the command line)
    label: str | None = None  # the TUI form's label; None: the form does not offer it
    form_kind: str | None = None  # the form's field kind when not the type's (path, text)

    @property
    def cli_flag(self) -> str | None:
        """The flag the command line takes (None: not on the command line)."""
        if self.flag is None:
            return self.negate
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def shown_name(self) -> str:
        """How errors name the option: its flag, else (a --no-… switch, or not on the command line)
        its argument name."""
        return self.cli_flag if self.flag is not None else self.name

    @property
    def accepts_none(self) -> bool:
        return self.default is None if self.nullable is None else self.nullable

    @property
    def types(self) -> tuple:
        return self.type if isinstance(self.type, tuple) else (self.type,)

    @property
    def values_offered(self) -> tuple:
        return self.choices if self.offered is None else self.offered

    def default_text(self) -> str:
        """The default as `--help` prints it."""
        if self.default is None:
            return self.auto
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return str(self.default)

    def _fill(self, text: str) -> str:
        return text.replace("{default}", self.default_text()).replace("{min}", _num(self.min)) \
            .replace("{max}", _num(self.max))

    def help_text(self) -> str:
        return self._fill(self.help)

    def label_text(self) -> str:
        return self._fill(self.label or "")

    def range_problem(self, value) -> str | None:
        """Why `value` (of the right type) is out of range, without the option's name; None when fine."""
        lo, hi = self.min, self.max
        low = lo is not None and (value <= lo if self.above_min else value < lo)
        if not (low or (hi is not None and value > hi)):
            return None
        if self.out_of_range:
            return self.out_of_range.format(value=value, min=_num(lo), max=_num(hi))
        if lo is not None and hi is not None:
            return f"{value} is out of range: use {_num(lo)}..{_num(hi)}"
        if low:
            return f"must be {'more than' if self.above_min else 'at least'} {_num(lo)}, not {value}"
        return f"must be at most {_num(hi)}, not {value}"


def _num(x) -> str:
    return "" if x is None else f"{x:g}"


@dataclass(frozen=True)
class KindSpec:
    """A job kind: its options, the locks it takes and how long a cancel lets it save."""

    kind: str
    options: tuple[Option, ...]
    locks: tuple[str, ...] = ()  # "model": start_job takes it for the job; others the job takes itself
    grace_s: float = DEFAULT_GRACE_S  # SIGTERM → SIGKILL when cancelled, from any screen or command
    model_lock_option: str | None = None  # a bool option that makes a job take the model lock too
    by_name: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "by_name", {o.name: o for o in self.options})
        if len(self.by_name) != len(self.options):
            raise ValueError(f"{self.kind}: two options share a name")

    @property
    def writes_model(self) -> bool:
        return "model" in self.locks

    def takes_model_lock(self, args: dict | None = None) -> bool:
        """Does a job of this kind with `args` take the project's model lock?"""
        opt = self.model_lock_option
        return self.writes_model or (opt is not None and bool((args or {}).get(opt)))

    def option(self, name: str) -> Option:
        return self.by_name[name]


# ---- checking values ------------------------------------------------------------------------------

def check_type(option: Option, value):
    """`value` as the option's type (an int is a float too); OptionError without the name when not."""
    for t in option.types:
        if isinstance(value, bool) != (t is bool):
            continue
        if t is float and isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise OptionError(f"must be a finite number, not {value}")
            return float(value)
        if isinstance(value, t):
            if t is list and not all(isinstance(v, str) for v in value):
                raise OptionError(f"must be a list of text, not {value!r:.60}")
            return value
    want = " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in option.types)
    raise OptionError(f"must be {want}, not {value!r:.60}")


def check_value(option: Option, value):
    """The checked value; OptionError naming the option when its type, value or range is wrong."""
    if value is None:
        if option.accepts_none:
            return None
        raise OptionError(f"{option.shown_name} needs a value")
    try:
        value = check_type(option, value)
    except OptionError as e:
        raise OptionError(f"{option.shown_name} {e}") from None
    if option.choices and value not in option.choices:
        raise OptionError(f"{option.shown_name} must be one of {', '.join(map(str, option.choices))}, "
                          f"not {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        problem = option.range_problem(value)
        if problem:
            raise OptionError(f"{option.shown_name} {problem}")
    return value


def validate(spec: KindSpec, args: dict | None) -> dict:
    """The job's arguments checked against its spec, defaults filled in; OptionError naming the
    first unknown or wrong option."""
    args = dict(args or {})
    unknown = sorted(set(args) - set(spec.by_name))
    if unknown:
        raise OptionError(f"the {spec.kind} job has no option {unknown[0]!r}; its options: "
                          f"{', '.join(spec.by_name)}")
    missing = [o.shown_name for o in spec.options if o.required and o.name not in args]
    if missing:
        raise OptionError(f"the {spec.kind} job needs {missing[0]}")
    return {o.name: check_value(o, args[o.name]) if o.name in args else o.default for o in spec.options}


# ---- the command line -----------------------------------------------------------------------------

def _parse_text(option: Option, text: str, check: bool):
    """argparse's `type` for one option: the text as the option's type, checked when `check`."""
    t = option.types[0]
    try:
        value = t(text) if t in (int, float) else text
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not {'a whole number' if t is int else 'a number'}: {text!r}") from None
    if t is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    problem = option.range_problem(value) if check and t in (int, float) else None
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def _bool_argument(container, option: Option) -> None:
    if option.flag is not None and option.negate:
        container.add_argument(option.cli_flag, action=argparse.BooleanOptionalAction, default=option.default,
                               help=option.help_text())
    elif option.negate:
        container.add_argument(option.negate, dest=option.name, action="store_false", help=option.help_text())
    else:
        container.add_argument(option.cli_flag, dest=option.name, action="store_const", const=True,
                               default=option.default, help=option.help_text())


def add_argument(container, option: Option, check: bool = True) -> None:
    """One option as an argparse argument (`container`: a parser, a group or an exclusive group).

    With `check`, argparse refuses an out-of-range value at once; without, it only converts the
    text and the range is checked (in core's words) when the job starts."""
    if option.cli_flag is None:
        return
    if bool in option.types:
        _bool_argument(container, option)
        return
    flags = [option.cli_flag] + ([option.short] if option.short else [])
    kw: dict = {"dest": option.name, "default": option.default, "help": option.help_text()}
    if option.values_offered:
        kw["choices"] = list(option.values_offered)
    elif option.types[0] in (int, float):
        kw["type"] = lambda text, o=option: _parse_text(o, text, check)
    for key in ("metavar", "nargs"):
        if getattr(option, key) is not None:
            kw[key] = getattr(option, key)
    if option.required:
        kw["required"] = True
    container.add_argument(*flags, **kw)


def add_arguments(container, spec: KindSpec, names: list[str] | None = None, check: bool = True) -> None:
    """The spec's options (or those named, in that order) as argparse arguments."""
    for name in names or [o.name for o in spec.options]:
        add_argument(container, spec.option(name), check)


def cli_options(spec: KindSpec) -> list[Option]:
    return [o for o in spec.options if o.cli_flag is not None]


def from_namespace(spec: KindSpec, ns: argparse.Namespace, drop_none: bool = False) -> dict:
    """The job arguments the parsed command line gives (its options on the command line only)."""
    out = {o.name: getattr(ns, o.name) for o in cli_options(spec) if hasattr(ns, o.name)}
    return {k: v for k, v in out.items() if v is not None} if drop_none else out


# ---- the TUI's forms --------------------------------------------------------------------------------

@dataclass(frozen=True)
class FormField:
    """What the TUI's options form needs of one option (tui.app.widgets.options_form.Field)."""

    name: str
    label: str
    kind: str  # choice | int | float | bool | path | paths | text
    default: object = None
    choices: tuple = ()
    optional: bool = True


def _form_kind(option: Option) -> str:
    if option.form_kind:
        return option.form_kind
    if option.values_offered:
        return "choice"
    t = option.types[0]
    return {int: "int", float: "float", bool: "bool", list: "paths"}.get(t, "text")


def form_field(option: Option, choices: tuple | None = None) -> FormField:
    """The option as a form field. A number or text left empty means the job's default; a switch
    shows its default (and is left out while at it); a choice shows its default, and one without a
    default may be left empty."""
    kind = "choice" if choices else _form_kind(option)
    if kind == "choice":
        return FormField(option.name, option.label_text(), kind, option.default,
                         tuple(choices or option.values_offered), optional=option.default is None)
    if kind == "bool":
        return FormField(option.name, option.label_text(), kind, option.default)
    return FormField(option.name, option.label_text(), kind)


def form_fields(spec: KindSpec, choices: dict[str, tuple] | None = None) -> list[FormField]:
    """The fields of the kind's TUI form: the options with a label, in the spec's order.
    `choices` gives the values offered for options whose values are known only at run time
    (the model presets)."""
    choices = choices or {}
    return [form_field(o, choices.get(o.name)) for o in spec.options if o.label is not None]
