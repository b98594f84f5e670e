"""One project: its sources per side, extraction status, sample faces, and the way to each stage."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static

from core.errors import FacepairError
from core.project import projects
from tui.app.screens.base import FacepairScreen
from tui.app.watch import JobWatch, fmt_duration, fmt_progress, newest_job
from tui.app.widgets.thumbs import ThumbGrid
from tui.styles import job_state_style

SIDES = ("a", "b")


def extraction_text(watch: JobWatch | None) -> Text:
    """'extraction: …' from the newest extract job: progress while it runs, its summary after."""
    t = Text("extraction: ", style="bold")
    if watch is None:
        t.append("not run yet", style="dim")
        return t
    d = watch.digest
    state = watch.state
    t.append(state, style=job_state_style(state))
    if d.progress:
        p = d.progress
        t.append(f"  {p.get('stage') or ''} {fmt_progress(p)} {p.get('unit') or ''}".rstrip())
        if isinstance(p.get("fps"), (int, float)):
            t.append(f"  {p['fps']:.1f} fps")
        if p.get("info"):
            t.append(f"  {p['info']}")
        if watch.active:
            t.append(f"  ETA {fmt_duration(d.eta_s())}")
    summary = d.summary or (watch.job.result if watch.job and isinstance(watch.job.result, dict) else None)
    if summary:
        for line in summary_lines(summary):
            t.append("\n")
            t.append(line)
    if watch.job is not None and watch.job.state == "failed" and watch.job.reason:
        t.append(f"\n{watch.job.reason}", style="red")
    return t


# Source states worth a mark in the kind column (core.faces.sources.source_state); others show the kind only.
STATE_MARKS = {"changed": ("changed", "bold red"), "partial": ("partial", "yellow"), "incomplete": ("incomplete", "yellow")}


def kind_cell(project: projects.Project, source: projects.Source) -> Text:
    """The kind column: the source's kind, and 'changed' when its file is no longer the one it was
    extracted from (its faces and alignments describe another file), 'partial' when fewer frames
    than the container's could be decoded, 'incomplete' when an extraction stopped midway."""
    from core.faces.sources import source_state

    t = Text(source.kind)
    try:
        state = source_state(project, source)["state"]
    except (FacepairError, OSError, ValueError):
        return t
    if state in STATE_MARKS:
        word, style = STATE_MARKS[state]
        t.append(f" {word}", style=style)
    return t


def fit_rankings(project: projects.Project) -> tuple[dict[str, list[dict]], str | None]:
    """Side-A source path → its pair-finder rows (best first) from fit.json, or an error text.

    `core.fit.job.rank_project_sources` only reads fit.json and file sizes (docs/fit.md)."""
    try:
        from core.fit.job import rank_project_sources

        rows = rank_project_sources(project)
    except ImportError:
        return {}, None
    except (FacepairError, OSError, ValueError, KeyError, TypeError) as e:
        return {}, f"cannot read the fit ranking: {e}"
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        by_source.setdefault(r.get("candidate", ""), []).append(r)
    return by_source, None


def fit_cell(rows: list[dict] | None) -> Text:
    """The fit column of side A's table: '#rank score' of the best person, or why there is none."""
    if not rows:
        return Text("-", style="dim")
    best = rows[0]
    score = best.get("score")
    if score is None:
        status = best.get("status") or "-"
        return Text(status, style="dim" if status == "not ranked" else "yellow")
    style = "green" if score >= 70 else "yellow" if score >= 40 else "red"
    t = Text(f"#{best.get('rank')} ", style="dim")
    t.append(f"{score:.0f}", style=style)
    if best.get("stale"):
        t.append(" stale", style="dim")
    return t


def fit_line(name: str, rows: list[dict] | None, watch: JobWatch | None) -> Text:
    """Below side A's table: how the highlighted source fits B, in words (or how to find out)."""
    t = Text("fit: ", style="bold")
    if watch is not None and watch.active:
        p = watch.digest.progress
        t.append(f"ranking side A's footage against B… {fmt_progress(p)} {(p or {}).get('stage') or ''}".rstrip(),
                 style="cyan")
        return t
    if not rows:
        t.append("press f to rank side A's footage by how well B's face fits it", style="dim")
        return t
    scored = [r for r in rows if r.get("score") is not None]
    if not scored:
        t.append(f"{name}: {rows[0].get('message') or rows[0].get('status')}", style="yellow")
        return t
    for i, r in enumerate(scored[:2]):
        if i:
            t.append("  ·  ")
        who = f"person {r['person']} " if len(scored) > 1 else ""
        words = "; ".join(d.get("words", "") for d in (r.get("differences") or [])[:2])
        t.append(f"{who}score {r['score']:.0f}")
        if words:
            t.append(f" ({words})")
        if isinstance(r.get("coverage"), (int, float)):
            t.append(f", poses covered {100 * r['coverage']:.0f}%")
    if scored[0].get("stale"):
        t.append("  stale: press f to rank again", style="dim")
    return t


def summary_lines(summary: dict) -> list[Text]:
    """One line per side of the extract job's summary (`{"sides": {"a": {...}, "b": {...}}}`,
    see docs/contracts.md): faces kept of found in frames, dropped by reason, problems."""
    sides = summary.get("sides")
    if not isinstance(sides, dict):
        return [Text(describe_summary(summary))]
    lines = []
    for side in SIDES:
        s = sides.get(side)
        if not isinstance(s, dict):
            continue
        line = Text(f"{side.upper()}: ", style="bold")
        if s.get("empty"):
            line.append(f"no faces found in {s.get('frames', 0)} frames", style="red")
        else:
            line.append(f"{s.get('faces_kept', 0)} kept / {s.get('faces_found', 0)} found in "
                        f"{s.get('frames', 0)} frames")
        dropped = {k: v for k, v in (s.get("dropped") or {}).items() if v}
        if dropped:
            line.append(" · dropped " + ", ".join(f"{v} {k}" for k, v in dropped.items()))
        if s.get("corrupt"):
            line.append(f"; {len(s['corrupt'])} corrupt skipped", style="yellow")
        for c in s.get("changed") or []:
            line.append(f"; {Path(c).name} changed: re-extracted", style="yellow")
        for part in s.get("partial") or []:
            line.append(f"; {Path(part.get('path', '')).name} partial ({part.get('decoded')} of "
                        f"{part.get('expected')} frames decoded)", style="yellow")
        for path, message in (s.get("errors") or {}).items():
            line.append(f"; {Path(path).name}: {message}", style="red")
        lines.append(line)
    return lines


def describe_summary(summary: dict) -> str:
    """Flat 'key value' pairs of any other summary (dicts such as dropped-by-reason inline)."""
    parts = []
    for key, value in summary.items():
        if key in ("t", "type"):
            continue
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
            parts.append(f"{key.replace('_', ' ')}: {inner}")
        elif isinstance(value, (list, tuple)):
            parts.append(f"{key.replace('_', ' ')}: {len(value)}")
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    return "  ".join(parts)


class ProjectScreen(FacepairScreen):
    TITLE = "Project"
    HELP = ("A project's sources per side (A: footage whose face is replaced, B: the face put on A), "
            "the faces extracted from them, and the way to training and conversion. Add sources by "
            "path (Tab completes); removing a source forgets it (its files stay). The fit column ranks "
            "side A's footage by how well B's face shape suits it (0–100, f ranks again); the line "
            "under the table says what differs most for the highlighted source. F (shift+f) opens the "
            "faces of the focused side to sort, filter and remove; each side's title counts its faces "
            "after removals and those in the trash.")
    BINDINGS = [
        Binding("a", "add_source", "Add", id="project.add_source"),
        Binding("x", "remove_source", "Remove", id="project.remove_source"),
        Binding("e", "extract", "Extract", id="project.extract"),
        Binding("t", "training", "Train", id="project.training"),
        Binding("c", "convert", "Convert", id="project.convert"),
        Binding("f", "fit", "Rank fit", id="project.fit"),
        Binding("o", "export", "Export", id="project.export"),
        Binding("F", "faces", "Faces", id="project.faces"),
        Binding("s", "selftest", "Self-test job", id="project.selftest", show=False),
    ]

    def __init__(self, name: str):
        super().__init__()
        self.project_name = name
        self.project: projects.Project | None = None
        self.error: str | None = None
        self.extract_watch: JobWatch | None = None
        self._sources_key: object = None
        self.last_extract_args: dict | None = None
        self.fit_watch: JobWatch | None = None
        self.fit_rows: dict[str, list[dict]] = {}

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="info")
        with Horizontal(id="sides"):
            for side in SIDES:
                with Vertical(classes="side", id=f"side-{side}"):
                    yield Static("", classes="side-title", id=f"title-{side}")
                    table = DataTable(id=f"sources-{side}", cursor_type="row", classes="sources")
                    if side == "a":
                        table.add_columns("source", "kind", "fit", "folder", "id")
                    else:
                        table.add_columns("source", "kind", "folder", "id")
                    yield table
                    if side == "a":
                        yield Static("", id="fit-a", classes="fit-line")
                    yield ThumbGrid(id=f"thumbs-{side}", classes="thumbs")
        yield Static("", id="extraction")
        yield Footer(compact=True)

    def setup(self) -> None:
        self.sub_title = self.project_name

    # ---- state -----------------------------------------------------------------------------
    def reload(self) -> None:
        try:
            self.project = projects.load_project(self.app.home, self.project_name)
            self.error = None
        except FacepairError as e:
            self.project, self.error = None, str(e)
        self.query_one("#sides").display = self.project is not None
        info = self.query_one("#info", Static)
        if self.project is None:
            info.update(Text.assemble(("This project cannot be opened:\n", "bold red"), (self.error or "", "red"),
                                      ("\nFix or remove its project.toml (or delete it from the projects screen).",
                                       "dim")))
            self.query_one("#extraction", Static).display = False
            return
        p = self.project
        self.query_one("#extraction", Static).display = True
        info.update(Text.assemble(
            ("A ", "bold"), p.label_a, ("  ←  B ", "bold"), p.label_b,
            ("   consent: ", "bold"), (p.consent.statement, "italic"),
            (f" ({', '.join(p.consent.by)})", "dim"),
        ))
        self.fit_rows, fit_error = fit_rankings(p)
        for side in SIDES:
            self._fill_side(p, side)
        if fit_error:
            self.query_one("#fit-a", Static).update(Text(fit_error, style="red"))
        self.extract_watch = self._watch_newest(p, "extract", self.extract_watch)
        self.fit_watch = self._watch_newest(p, "fit", self.fit_watch)

    @staticmethod
    def _watch_newest(p: projects.Project, kind: str, current: JobWatch | None) -> JobWatch | None:
        job = newest_job(p, (kind,))
        if job is None:
            return None
        return current if current is not None and current.dir == job.dir else JobWatch(job.dir)

    def _fill_side(self, p: projects.Project, side: str) -> None:
        from core.faces.curation import side_counts

        counts = side_counts(p, side)
        count = counts["faces"]
        sources = p.sources_of(side)
        self.query_one(f"#title-{side}", Static).update(Text.assemble(
            (f"{side.upper()} · {p.label(side)}", "bold"),
            f"   {len(sources)} source{'s' if len(sources) != 1 else ''}, {count} face{'s' if count != 1 else ''}",
            (f", {counts['trash']} in trash" if counts["trash"] else "", "yellow"),
        ))
        table = self.query_one(f"#sources-{side}", DataTable)
        if side == "a":
            rows = [(Path(s.path).name, kind_cell(p, s), fit_cell(self.fit_rows.get(s.path)),
                     _short(str(Path(s.path).parent)), s.id) for s in sources]
        else:
            rows = [(Path(s.path).name, kind_cell(p, s), _short(str(Path(s.path).parent)), s.id) for s in sources]
        if getattr(table, "_facepair_rows", None) != [tuple(str(c) for c in r) for r in rows]:
            cursor = table.cursor_row
            table.clear()
            for s, row in zip(sources, rows, strict=True):
                table.add_row(*row, key=s.id)
            if rows:
                table.move_cursor(row=min(cursor or 0, len(rows) - 1))
            table._facepair_rows = [tuple(str(c) for c in r) for r in rows]
        self.query_one(f"#thumbs-{side}", ThumbGrid).refresh_from(p.faces_dir(side), count)

    def poll(self) -> None:
        if self.project is None:
            return
        if self.extract_watch is not None:
            self.extract_watch.poll()
        self.query_one("#extraction", Static).update(extraction_text(self.extract_watch))
        if self.fit_watch is not None:
            was_active = self.fit_watch.active
            self.fit_watch.poll()
            if was_active and not self.fit_watch.active:
                self._tick(force=True)  # the ranking just changed: re-read fit.json now
                return
        self._update_fit_line()

    def _update_fit_line(self) -> None:
        p = self.project
        if p is None:
            return
        sources = p.sources_of("a")
        table = self.query_one("#sources-a", DataTable)
        src = sources[table.cursor_row] if sources and table.cursor_row is not None and \
            table.cursor_row < len(sources) else None
        rows = self.fit_rows.get(src.path) if src else None
        name = Path(src.path).name if src else ""
        if not sources and not (self.fit_watch and self.fit_watch.active):
            self.query_one("#fit-a", Static).update(Text("fit: add footage of A, then press f to rank it", style="dim"))
            return
        self.query_one("#fit-a", Static).update(fit_line(name, rows, self.fit_watch))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "sources-a":
            self._update_fit_line()

    # ---- actions ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("add_source", "remove_source", "extract", "training", "convert", "selftest", "fit", "faces"):
            return self.project is not None
        return True

    def _need_project(self) -> projects.Project | None:
        if self.project is None:
            self.app.report(self.error or f"project {self.project_name!r} cannot be opened")
        return self.project

    def focused_side(self) -> str:
        focused = self.focused
        if focused is not None and focused.id in ("sources-a", "sources-b"):
            return focused.id[-1]
        return "a"

    def action_add_source(self) -> None:
        from tui.app.screens.add_source import AddSourceDialog, SourceRequest

        p = self._need_project()
        if p is None:
            return

        def answered(req: SourceRequest | None) -> None:
            if req is not None:
                self.add_source(req.side, req.path, req.copy)

        self.app.push_screen(AddSourceDialog(self.focused_side(), {"a": p.label_a, "b": p.label_b}), answered)

    @work(thread=True, exclusive=True, group="sources", exit_on_error=False)
    def add_source(self, side: str, path: str, copy: bool) -> None:
        """In a thread: `--copy` of a long video takes a while and must not freeze the screen."""
        try:
            p = projects.load_project(self.app.home, self.project_name)
            added = projects.add_sources(p, side, [path], copy=copy)
        except FacepairError as e:
            self.app.call_from_thread(self.app.report, e)
            return
        except OSError as e:
            self.app.call_from_thread(self.app.report, f"cannot add {path}: {e}")
            return
        if added:
            s = added[0]
            msg = f"added {s.kind} {s.path} to side {s.side} ({p.label(s.side)}) as {s.id}"
        else:
            msg = f"{path} is already a source of side {side}"
        self.app.call_from_thread(self.notify, msg, markup=False)
        self.app.call_from_thread(self._tick, True)

    def action_remove_source(self) -> None:
        from tui.app.screens.confirm import ConfirmDialog

        p = self._need_project()
        if p is None:
            return
        side = self.focused_side()
        table = self.query_one(f"#sources-{side}", DataTable)
        sources = p.sources_of(side)
        if not sources or table.cursor_row is None or table.cursor_row >= len(sources):
            self.notify(f"side {side.upper()} has no source to remove (select one in its table first)",
                        severity="warning", markup=False)
            return
        src = sources[table.cursor_row]

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                current = projects.load_project(self.app.home, self.project_name)
                projects.remove_source(current, side, src.id)
            except FacepairError as e:
                self.app.report(e)
                return
            self.notify(f"removed {src.path} from side {side}", markup=False)
            self._tick(force=True)

        self.app.push_screen(ConfirmDialog(
            f"Remove source {src.path} from side {side.upper()} ({p.label(side)})?\n"
            "The file itself is not deleted.", yes="Remove"), answered)

    def action_extract(self) -> None:
        from tui.app.screens.stage_options import extract_dialog

        p = self._need_project()
        if p is None:
            return
        if not self.app.kind_available("extract"):
            self.app.notify(self.app.unavailable("extract"), title="not available", severity="warning",
                            markup=False)
            return

        def answered(args: dict | None) -> None:
            if args is None:
                return
            try:
                args = check_extract_args(p, args)
            except FacepairError as e:
                self.app.report(e)
                return
            self.last_extract_args = args
            if self.app.start_job(p, "extract", args):
                self._tick(force=True)

        self.app.push_screen(extract_dialog(p, self.last_extract_args), answered)

    def action_fit(self) -> None:
        """Rank side A's sources by how well B's face fits them (the `fit` job, issue 8)."""
        p = self._need_project()
        if p is None:
            return
        if not self.app.kind_available("fit"):
            self.app.notify(self.app.unavailable("fit"), title="not available", severity="warning", markup=False)
            return
        if not p.sources_of("a"):
            self.app.report(f"no candidates: add footage to side A (`facepair add-source {p.name} a PATH…`) "
                            "to rank it")
            return
        if self.fit_watch is not None and self.fit_watch.active:
            self.notify(f"a ranking is already running ({self.fit_watch.id})", markup=False)
            return
        job = self.app.start_job(p, "fit", {})
        if job is not None:
            self.fit_watch = JobWatch(job.dir)
            self.poll()

    def action_export(self) -> None:
        """Export the trained model to a .dfm or ONNX file (the `export` job, core/export/job.py)."""
        from tui.app.screens.stage_options import export_dialog

        p = self._need_project()
        if p is None:
            return
        if not self.app.kind_available("export"):
            self.app.notify(self.app.unavailable("export"), title="not available", severity="warning",
                            markup=False)
            return

        def answered(args: dict | None) -> None:
            if args is not None and self.app.start_job(p, "export", args):
                self._tick(force=True)

        self.app.push_screen(export_dialog(p), answered)

    def action_selftest(self) -> None:
        p = self._need_project()
        if p is not None and self.app.start_job(p, "selftest", {"seconds": 30.0, "steps": 150}):
            self._tick(force=True)

    def action_training(self) -> None:
        from tui.app.screens.training import TrainingScreen

        if self._need_project():
            self.app.push_screen(TrainingScreen(self.project_name))

    def action_faces(self) -> None:
        """The faces of the focused side's table (A unless B's is focused; a/b switch there)."""
        from tui.app.screens.faces import FacesScreen

        if self._need_project():
            self.app.push_screen(FacesScreen(self.project_name, self.focused_side()))

    def action_convert(self) -> None:
        from tui.app.screens.convert import ConvertScreen

        if self._need_project():
            self.app.push_screen(ConvertScreen(self.project_name))


def check_extract_args(p: projects.Project, args: dict) -> dict:
    """The checks `facepair extract` makes before starting the job, with the same words."""
    from core.extract.options import SPEC, check_request
    from core.jobs.spec import validate

    references = check_request(p, args.get("side", "both"), args.get("reference"), fresh=bool(args.get("fresh")),
                               redo_missing=bool(args.get("redo_missing")))
    if references:
        args = {**args, "reference": references}
    validate(SPEC, args)
    return args


def _short(path: str, keep: int = 40) -> str:
    """The path with its middle elided when long: the file name is what people recognise."""
    if len(path) <= keep:
        return path
    name = Path(path).name
    if len(name) >= keep - 2:
        return "…" + name[-(keep - 1):]
    return path[: keep - len(name) - 2] + "…/" + name

