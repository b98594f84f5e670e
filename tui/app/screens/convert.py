"""Convert: pick an input (recent inputs and the project's sources offered, or any path with
completion), set the options of `facepair convert`, preview one
frame as a picture, start the conversion and follow it (fps, ETA) to the output path."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, Label, ProgressBar, Select, Static

from core.convert.options import CONVERT
from core.errors import FacepairError
from core.project import projects
from core.studio.inputs import convert_inputs
from tui.app.screens.base import FacepairScreen
from tui.app.screens.stage_options import fields_for
from tui.app.watch import JobWatch, fmt_duration, fmt_progress, newest_job
from tui.app.widgets.options_form import OptionError, OptionsForm, fields_of
from tui.app.widgets.path_input import PathInput
from tui.app.widgets.picture import Picture
from tui.styles import job_state_style

# `facepair convert`'s options with a form label, in its spec's order (core/convert/options.py);
# preview takes the same, less output and range.
# The form leads with what a user changes most (the direction, the faces, the look), as before.
CONVERT_FIELDS = fields_of(CONVERT, order=("output", "swap", "faces", "mask", "color", "blend", "erode", "blur",
                                           "sharpen", "start", "end", "crf", "label", "detector"))


def convert_status(watch: JobWatch | None, what: str) -> Text:
    t = Text(f"{what}: ", style="bold")
    if watch is None:
        t.append("not run yet", style="dim")
        return t
    d = watch.digest
    state = watch.state
    t.append(state, style=job_state_style(state))
    t.append(f" ({watch.id})", style="dim")
    p = d.progress
    if p:
        t.append(f"  {fmt_progress(p)} {p.get('unit') or 'frames'}")
        if isinstance(p.get("fps"), (int, float)):
            t.append(f"  {p['fps']:.1f} fps")
    if watch.active:
        t.append(f"  ETA {fmt_duration(d.eta_s())}")
    job = watch.job
    if job is not None and job.state == "failed" and job.reason:
        t.append(f"\n{job.reason}", style="red")
    if job is not None and job.state == "succeeded" and job.result:
        out = job.result.get("output") or job.result.get("path")
        t.append(f"\noutput: {out}" if out else "\nresult: " + ", ".join(f"{k} {v}" for k, v in job.result.items()),
                 style="green")
    return t


class ConvertScreen(FacepairScreen):
    TITLE = "Convert"
    HELP = ("Put B's face on A in a video (or images). Every output is labelled as synthetic: "
            "metadata always, a visible label unless you untick it. Preview renders one frame side by "
            "side with the original so you can tune the options before converting the whole input.")
    BINDINGS = [
        Binding("ctrl+r", "preview", "Preview frame", id="convert.preview", priority=True),
        Binding("ctrl+s", "start", "Convert", id="convert.start", priority=True),
        Binding("ctrl+x", "stop", "Stop", id="convert.stop", priority=True),
    ]

    def __init__(self, name: str):
        super().__init__()
        self.project_name = name
        self.project: projects.Project | None = None
        self.convert_watch: JobWatch | None = None
        self.preview_watch: JobWatch | None = None
        self._shown: object = None
        self._choices: tuple[tuple[str, str], ...] | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="convert-note", markup=False)
        with Horizontal(id="convert-body"):
            with VerticalScroll(id="convert-form"):
                yield Label("Input (video, image, folder)")
                yield Select((), prompt="recent inputs, sources", id="convert-choices")
                yield PathInput(id="convert-input")
                yield Label("Preview frame")
                yield Input("0", type="integer", id="convert-frame")
                yield OptionsForm(fields_for("convert", CONVERT_FIELDS), id="convert-options")
            with Vertical(id="convert-side"):
                yield Picture("preview: ctrl+r renders one frame", id="convert-preview")
        yield Static("", id="convert-status")
        yield ProgressBar(id="convert-progress", show_eta=False)
        yield Footer(compact=True)

    def setup(self) -> None:
        self.sub_title = f"{self.project_name} — convert"
        note = self.query_one("#convert-note", Static)
        missing = [k for k in ("convert", "preview") if not self.app.kind_available(k)]
        note.display = bool(missing)
        if missing:
            note.update(f"{' and '.join(missing)} not available in this build: job kinds not registered in "
                        "core.jobs.kinds.")
        self.query_one("#convert-input", PathInput).focus()

    def reload(self) -> None:
        try:
            self.project = projects.load_project(self.app.home, self.project_name)
        except FacepairError as e:
            self.project = None
            self.query_one("#convert-status", Static).update(Text(str(e), style="red"))
            return
        self._offer_inputs()
        for kind, attr in (("convert", "convert_watch"), ("preview", "preview_watch")):
            job = newest_job(self.project, (kind,))
            current = getattr(self, attr)
            if job is not None and (current is None or current.dir != job.dir):
                setattr(self, attr, JobWatch(job.dir))

    def _offer_inputs(self) -> None:
        """Refresh the input choices; an empty path field starts on the first (newest) one."""
        choices = tuple((c.label, c.path) for c in convert_inputs(self.project))
        if choices == self._choices:
            return
        first = self._choices is None
        self._choices = choices
        select = self.query_one("#convert-choices", Select)
        select.set_options(choices)
        select.display = bool(choices)
        field = self.query_one("#convert-input", PathInput)
        if first and choices and not field.value.strip():
            field.value = choices[0][1]

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "convert-choices" and isinstance(event.value, str):
            self.query_one("#convert-input", PathInput).value = event.value

    def poll(self) -> None:
        if self.project is None:
            return
        for w in (self.convert_watch, self.preview_watch):
            if w is not None:
                w.poll()
        version = tuple((id(w), w.digest.version) if w else None for w in (self.convert_watch, self.preview_watch))
        if version == self._shown:
            return
        self._shown = version
        status = convert_status(self.convert_watch, "conversion")
        status.append("\n")
        status.append(convert_status(self.preview_watch, "preview"))
        self.query_one("#convert-status", Static).update(status)
        w = self.convert_watch
        bar = self.query_one("#convert-progress", ProgressBar)
        bar.display = bool(w is not None and w.digest.progress and w.digest.progress.get("total"))
        if bar.display:
            bar.update(total=w.digest.progress["total"], progress=w.digest.progress.get("done") or 0)
        pw = self.preview_watch
        if pw is not None:
            path = None
            if pw.digest.preview:
                path = pw.digest.preview.get("path")
            elif pw.job is not None and pw.job.result:
                path = pw.job.result.get("path") or pw.job.result.get("preview")
            if path:
                self.query_one("#convert-preview", Picture).show_path(path, key=pw.id)
        self.refresh_bindings()

    # ---- actions ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "stop":
            return self.convert_watch is not None and self.convert_watch.active
        return True

    def _input(self) -> str | None:
        value = self.query_one("#convert-input", PathInput).value.strip()
        if not value:
            self.app.report("choose an input video, image or folder first (the path field; Tab completes)")
            return None
        return str(Path(value).expanduser().resolve())

    def _ready(self, kind: str) -> str | None:
        """The input path when a job of `kind` can start now; else None, the user told why."""
        if self.project is None:
            return None
        if not self.app.kind_available(kind):
            self.app.notify(self.app.unavailable(kind), title="not available", severity="warning", markup=False)
            return None
        return self._input()

    def action_preview(self) -> None:
        path = self._ready("preview")
        if path is None:
            return
        try:
            options = self.query_one("#convert-options", OptionsForm).values()
            frame = self.query_one("#convert-frame", Input).value.strip()
            args = {"input": path, **{k: v for k, v in options.items() if k != "output"}}
            if frame:
                args["frame"] = int(frame)
        except (OptionError, ValueError) as e:
            self.app.report(e)
            return
        args = _accepted("preview", args)
        job = self.app.start_job(self.project, "preview", args)
        if job is not None:
            self.preview_watch = JobWatch(job.dir)
            self.query_one("#convert-preview", Picture).show_text("rendering the preview…")
            self.poll()

    def action_start(self) -> None:
        path = self._ready("convert")
        if path is None:
            return
        try:
            options = self.query_one("#convert-options", OptionsForm).values()
        except OptionError as e:
            self.app.report(e)
            return
        if options.get("output"):
            options["output"] = str(Path(options["output"]).expanduser().resolve())
        # Never over a source; an existing output only once the user says so.
        from core.convert import plan as convert

        try:
            convert.resolve_output(self.project, Path(path), convert.input_kind(Path(path)),
                                   options.get("swap") or "a-to-b", options.get("output"))
        except convert.OutputExists:
            from tui.app.screens.confirm import ConfirmDialog

            def answered(yes: bool | None) -> None:
                if yes:
                    self._start_convert(path, {**options, "overwrite": True})

            self.app.push_screen(ConfirmDialog(f"{options['output']} exists.\nReplace it with this conversion?",
                                               yes="Replace"), answered)
            return
        except FacepairError as e:
            self.app.report(e)
            return
        self._start_convert(path, options)

    def _start_convert(self, path: str, options: dict) -> None:
        job = self.app.start_job(self.project, "convert", _accepted("convert", {"input": path, **options}))
        if job is not None:
            self.convert_watch = JobWatch(job.dir)
            self.poll()

    def action_stop(self) -> None:
        from tui.app.screens.confirm import confirm_cancel

        if self.convert_watch is not None and self.convert_watch.job is not None:
            confirm_cancel(self.app, self.convert_watch.job)


def _accepted(kind: str, args: dict) -> dict:
    from tui.app.screens.stage_options import job_arg_names

    names = job_arg_names(kind)
    return args if names is None else {k: v for k, v in args.items() if k in names}
