"""One side's faces: a grid of every kept face (sorted, filtered, paged without loading them all),
the selected face larger with its scores, and the pose coverage of A's footage against B.

Everything it shows comes from core.faces: the score table (`curation.face_table`: cached per
source), the thumbnail cache (`thumbnails.ThumbCache`: built in a worker thread, the current
order first, the grid filling in as it grows), the pictures (`views.FaceViews`) and the pose maps
(`coverage`). Removing (`x`) and undoing (`u`) are `curation.remove_faces` / `restore_faces`,
as `facepair faces remove` / `restore` do them. Faces removed from the command line meanwhile
show up on the next reload (the faces folder's mtime says when).
"""

from __future__ import annotations

import os

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Static

from core.errors import FacepairError
from core.faces import coverage, curation, trash
from core.faces.thumbnails import ThumbCache
from core.faces.views import FaceViews
from core.project import projects
from tui.app.screens.base import FacepairScreen
from tui.app.widgets.face_detail import FaceDetail
from tui.app.widgets.face_grid import FaceGrid
from tui.app.widgets.pose_map import PoseMap


class FaceList:
    """The faces the grid shows: rows of the side's ScoreTable in the screen's order (a FaceSource)."""

    def __init__(self, table, rows: np.ndarray, names: list[str], cache: ThumbCache | None, tags: dict[str, str],
                 marks: set[str]):
        self.table, self.rows, self.names, self.cache, self.tags, self.marks = table, rows, names, cache, tags, marks

    def __len__(self) -> int:
        return len(self.rows)

    def name(self, index: int) -> str:
        return self.names[int(self.rows[index])]

    def thumb(self, index: int):
        return self.cache.get(self.name(index)) if self.cache is not None else None

    def unreadable(self, index: int) -> bool:
        return self.cache is not None and self.cache.unreadable(self.name(index))

    def label(self, index: int, width: int) -> str:
        r = int(self.rows[index])
        frame = str(int(self.table.columns["frame"][r]))
        tag = self.tags.get(str(self.table.columns["source"][r]), "")
        room = width - len(frame) - 1
        return f"{tag[:room]} {frame}".rjust(width) if room > 0 else frame[-width:]

    def marked(self, index: int) -> bool:
        return self.name(index) in self.marks

    def mark_run(self, start: int, end: int) -> None:
        lo, hi = sorted((start, end))
        self.marks.update(self.name(i) for i in range(lo, hi + 1))

    def face(self, index: int) -> dict:
        """One face as the detail pane shows it."""
        r = int(self.rows[index])
        c = self.table.columns
        return {"name": self.names[r], "source": str(c["source"][r]), "frame": int(c["frame"][r]),
                "face": int(c["face"][r]), "track": int(c["track"][r]), "removed": bool(c["removed"][r]),
                "scores": {k: float(c[k][r]) for k in curation.SORT_KEYS}}


class FacesScreen(FacepairScreen):
    TITLE = "Faces"
    HELP = ("One side's faces, as extraction kept them: look, sort, filter and throw out false detections, "
            "other people, blurred and badly aligned faces. Removing never deletes: a removed face moves to "
            "the side's trash (faces/SIDE/.trash), training leaves it out from its next start or resume, and "
            "convert --faces match does not swap that detection; u brings the last removal back. The map "
            "shows the poses (yaw across, pitch up, 10° a bin) of side A's footage and of B's faces: a red × "
            "is a pose A's footage has and B has no face for within a bin. Filters: blur<30, |yaw|>40, identity>0.55, "
            "source=ID (or just a source id). Thumbnails are cached in faces/SIDE/.thumbs.")
    BINDINGS = [
        Binding("space", "mark", "Mark", id="faces.mark"),
        Binding("x", "remove", "Remove", id="faces.remove"),
        Binding("u", "undo", "Undo", id="faces.undo"),
        Binding("o", "sort", "Sort", id="faces.sort"),
        Binding("r", "reverse", "Reverse the sort", id="faces.reverse", show=False),
        Binding("slash", "filter", "Filter", id="faces.filter"),
        Binding("enter", "frame", "Frame", id="faces.frame"),
        Binding("m", "mark_all", "Mark all shown", id="faces.mark_all", show=False),
        Binding("a", "side('a')", "Side A", id="faces.side_a", show=False),
        Binding("b", "side('b')", "Side B", id="faces.side_b", show=False),
        Binding("z", "zoom", "Thumbnail size", id="faces.zoom", show=False),
    ]

    def __init__(self, name: str, side: str = "a"):
        super().__init__()
        self.project_name = name
        self.side = projects.validate_side(side)
        self.project: projects.Project | None = None
        self.table = None
        self.names: list[str] = []
        self.cache: ThumbCache | None = None
        self.views: FaceViews | None = None
        self.faces: FaceList | None = None
        self.marks: set[str] = set()
        self.sort, self.descending, self.where_text = "order", False, ""
        self.where = curation.Where()
        self.tags: dict[str, str] = {}
        self.tables: dict = {}
        self.hists: tuple = ()
        self.state = "loading"  # loading | ready | error
        self.thumbs_note = ""
        self._signature: object = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="faces-status")
        with Horizontal(id="faces-body"):
            yield FaceGrid(id="face-grid")
            with Vertical(id="faces-side"):
                yield FaceDetail(id="face-detail")
                yield PoseMap("", id="pose-map")
        yield Footer(compact=True)

    def setup(self) -> None:
        self.sub_title = f"{self.project_name} — faces of side {self.side.upper()}"
        self.query_one("#face-grid", FaceGrid).focus()
        self.query_one("#face-detail", FaceDetail).clear("scoring the faces…")
        self._update_status()
        self.load()

    # ---- loading --------------------------------------------------------------------------------
    def _folder_signature(self) -> object:
        if self.project is None:
            return None
        out = []
        for d in (self.project.faces_dir(self.side), trash.trash_dir(self.project, self.side)):
            try:
                out.append(os.stat(d).st_mtime_ns)
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    @work(thread=True, exclusive=True, group="faces-load", exit_on_error=False)
    def load(self) -> None:
        """The score table, the thumbnail cache and the target's poses, off the UI thread (scoring a
        side the first time takes a while; after that it is read from each source's cache)."""
        try:
            project = projects.load_project(self.app.home, self.project_name)
            tables = {side: curation.face_table(project, side) for side in ("a", "b")}  # the other: its poses
            cache, views = ThumbCache(project, self.side), FaceViews(project)
        except (FacepairError, OSError, ValueError) as e:
            self.app.call_from_thread(self._failed, str(e))
            return
        self.app.call_from_thread(self._loaded, project, tables, cache, views)

    def _failed(self, message: str) -> None:
        self.state = "error"
        self.query_one("#face-detail", FaceDetail).clear("")
        self.query_one("#faces-status", Static).update(Text(message, style="red"))

    def _loaded(self, project, tables, cache, views) -> None:
        self.project, self.tables, self.cache, self.views = project, tables, cache, views
        self.table = tables[self.side]
        self.names = self.table.names
        self.tags = {s.id: s.id.rsplit("-", 1)[0] for s in project.sources_of(self.side)}
        self._signature = self._folder_signature()
        self.marks &= set(self.names)
        self.state = "ready"
        self.refresh_bindings()
        self.reorder(keep=self.faces.name(self.grid.cursor) if self.faces is not None and len(self.faces) else None)
        self.call_after_refresh(self.build_thumbnails)  # after the first page is drawn from what is cached

    @work(thread=True, exclusive=True, group="faces-thumbs", exit_on_error=False)
    def build_thumbnails(self) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        cache, order = self.cache, [self.faces.name(i) for i in range(len(self.faces))] if self.faces else []

        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(self._thumbs_progress, done, total)

        try:
            built = cache.build(first=order, progress=progress, cancelled=lambda: worker.is_cancelled)
        except OSError as e:
            self.app.call_from_thread(self._thumbs_done, f"thumbnails: cannot write {cache.dir}: {e}")
            return
        note = f"{len(built.unreadable)} crops unreadable" if built.unreadable else ""
        self.app.call_from_thread(self._thumbs_done, note)

    def _thumbs_progress(self, done: int, total: int) -> None:
        self.thumbs_note = f"thumbnails {done:,} / {total:,}"
        self.grid.redraw(thumbs=True)
        self._update_status()

    def _thumbs_done(self, note: str) -> None:
        self.thumbs_note = note
        self.grid.redraw(thumbs=True)
        self._update_status()

    def reload(self) -> None:
        """Faces removed or added by another process (the CLI, an extraction): reload the table."""
        if self.state == "ready" and self._folder_signature() != self._signature:
            self._signature = self._folder_signature()
            self.load()

    # ---- the view -------------------------------------------------------------------------------
    @property
    def grid(self) -> FaceGrid:
        return self.query_one("#face-grid", FaceGrid)

    def reorder(self, keep: str | None = None, cursor: int | None = None) -> None:
        """Apply the filter and sort to the table; the cursor on face `keep` when it is still shown,
        else at index `cursor` (else where it was)."""
        if self.table is None:
            return
        rows = self.table.order_by(self.sort, self.descending, curation.select(self.table, self.where, removed=False))
        self.faces = FaceList(self.table, rows, self.names, self.cache, self.tags, self.marks)
        at = self.grid.cursor if cursor is None else cursor
        if keep is not None:
            where = np.flatnonzero(np.asarray(self.names, dtype=object)[rows] == keep) if len(rows) else []
            at = int(where[0]) if len(where) else at
        self.hists = tuple(coverage.side_histogram(self.tables[side], label=side.upper()) for side in ("a", "b"))
        self.grid.show(self.faces, at)  # the detail pane follows on the grid's Moved message
        self._update_status()

    def _update_status(self) -> None:
        if self.table is None:
            self.query_one("#faces-status", Static).update(Text("scoring the faces…", style="dim"))
            return
        kept = int((~self.table.columns["removed"]).sum())
        trashed = len(self.table) - kept
        t = Text()
        t.append(f"{self.side.upper()} · {self.project.label(self.side)}", style="bold")
        t.append(f"  {len(self.faces):,} shown of {kept:,} faces, {trashed:,} in the trash")
        t.append(f"  sort {self.sort} {'↓' if self.descending else '↑'}")
        if self.where.clauses:
            t.append(f"  filter {self.where}", style="cyan")
        if self.marks:
            t.append(f"  {len(self.marks)} marked", style="bold yellow")
        if self.thumbs_note:
            t.append(f"  {self.thumbs_note}", style="dim")
        self.query_one("#faces-status", Static).update(t)

    def _update_side(self) -> None:
        """The detail pane and the pose maps for the face under the cursor."""
        detail = self.query_one("#face-detail", FaceDetail)
        face = None
        if self.faces is not None and len(self.faces):
            face = self.faces.face(self.grid.cursor)
            face["source_name"] = next((os.path.basename(s.path) for s in self.project.sources
                                        if s.id == face["source"]), face["source"])
            try:
                image, problem = self.views.crop(self.side, face["name"], px=128), None
            except (FacepairError, OSError) as e:
                image, problem = None, str(e)
            detail.show(face, image, problem)
        else:
            detail.clear("no faces match the filter" if self.where.clauses else f"side {self.side.upper()} has no faces")
        self._update_poses(face)

    def _update_poses(self, face: dict | None) -> None:
        a, b = self.hists
        selected = coverage.bin_of(face["scores"]["yaw"], face["scores"]["pitch"]) if face else None
        self.query_one("#pose-map", PoseMap).show(a, b, coverage.lacking(a, b), coverage.covered_share(a, b),
                                                  selected, 0 if self.side == "a" else 1)

    def on_face_grid_moved(self, event: FaceGrid.Moved) -> None:
        if self.faces is not None:
            self._update_side()
            self._update_status()

    # ---- actions --------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("mark", "remove", "undo", "sort", "reverse", "filter", "frame", "mark_all", "zoom"):
            return self.state == "ready"
        return True

    def _current(self) -> str | None:
        return self.faces.name(self.grid.cursor) if self.faces is not None and len(self.faces) else None

    def action_mark(self) -> None:
        name = self._current()
        if name is not None:
            self.marks.symmetric_difference_update({name})
            self.grid.go(self.grid.cursor + 1)
            self._update_status()

    def action_mark_all(self) -> None:
        shown = {self.faces.name(i) for i in range(len(self.faces))}
        if shown <= self.marks:
            self.marks -= shown
        else:
            self.marks |= shown
        self.grid.redraw()
        self._update_status()

    def action_remove(self) -> None:
        current = self._current()
        names = sorted(self.marks) if self.marks else [n for n in [current] if n]
        if not names:
            return
        try:
            result = curation.remove_faces(self.project, self.side, names, table=self.table)
        except (FacepairError, OSError) as e:
            self.app.report(e)
            return
        self.marks.clear()
        self._signature = self._folder_signature()
        self.reorder(keep=None if current in result.removed else current, cursor=self.grid.cursor)
        self.notify(f"removed {len(result.removed)} face{'s' if len(result.removed) != 1 else ''} to the trash "
                    f"(u undoes)", markup=False)

    def action_undo(self) -> None:
        try:
            result = curation.restore_faces(self.project, self.side, last=True, table=self.table)
        except (FacepairError, OSError) as e:
            self.app.report(e)
            return
        if not result.restored:
            self.notify("nothing to undo: the trash has no removal batch", markup=False)
            return
        self._signature = self._folder_signature()
        self.reorder(keep=sorted(result.restored)[0])
        skipped = f"; {len(result.skipped)} left in the trash" if result.skipped else ""
        self.notify(f"restored {len(result.restored)} face{'s' if len(result.restored) != 1 else ''}{skipped}",
                    markup=False)

    def action_sort(self) -> None:
        from tui.app.screens.faces_dialogs import SortDialog

        def answered(key: str | None) -> None:
            if key is not None:
                self.sort = key
                self.reorder(cursor=0)

        self.app.push_screen(SortDialog(curation.SORT_KEYS, self.sort, self.descending), answered)

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self.reorder(cursor=0)

    def parse_filter(self, text: str) -> curation.Where:
        """A --where expression, or a bare source id (or the start of one) of this side."""
        text = text.strip()
        ids = [s.id for s in self.project.sources_of(self.side)]
        if text and not any(op in text for op in "<>=!"):
            hits = [i for i in ids if i == text] or [i for i in ids if i.startswith(text)]
            if len(hits) == 1:
                return curation.parse_where(f"source={hits[0]}")
            if len(hits) > 1:
                raise curation.CurationError(f"{text!r} is the start of {len(hits)} sources: {', '.join(hits)}")
            raise curation.CurationError(f"{text!r} is neither a condition (e.g. blur<30) nor a source of side "
                                         f"{self.side} ({', '.join(ids) or 'none'})")
        return curation.parse_where(text)

    def action_filter(self) -> None:
        from tui.app.screens.faces_dialogs import FilterDialog

        def answered(text: str | None) -> None:
            if text is not None:
                self.where, self.where_text = self.parse_filter(text), text
                self.reorder(cursor=0)

        ids = [s.id for s in self.project.sources_of(self.side)]
        self.app.push_screen(FilterDialog(self.where_text, self.parse_filter, ids), answered)

    def action_frame(self) -> None:
        from tui.app.screens.faces_dialogs import FrameScreen

        name = self._current()
        if name is not None:
            self.app.push_screen(FrameScreen(self.views, name))

    def action_side(self, side: str) -> None:
        if side != self.side:
            self.app.switch_screen(FacesScreen(self.project_name, side))

    def action_zoom(self) -> None:
        self.grid.zoom()
