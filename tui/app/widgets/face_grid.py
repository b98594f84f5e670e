"""A virtualised grid of face thumbnails: it draws only the rows of cells on screen and asks its
`faces` (a `FaceSource`) for those faces' thumbnails and labels, so paging through 10,000 faces
costs what one page costs.

Thumbnails are drawn as half-cell blocks (two pixels a character: any terminal, any SSH
connection, and a page redraws in milliseconds); the detail pane beside it shows the selected
face larger with the terminal's graphics. Each cell is a thumbnail and a label line (source and
frame); the cursor's label is reversed, marked faces have a ✓ on yellow.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from PIL import Image
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

SIZES = ((8, 4), (12, 6), (16, 8))  # a thumbnail's (columns, rows): 8×8, 12×12, 16×16 pixels
GAP = 1
HALF = "▀"


class FaceSource(Protocol):
    """What the grid shows: `count` faces; a face's thumbnail (RGB, None when not built yet),
    whether its crop is unreadable, its label, whether it is marked; marking a run."""

    def __len__(self) -> int: ...
    def thumb(self, index: int) -> np.ndarray | None: ...
    def unreadable(self, index: int) -> bool: ...
    def label(self, index: int, width: int) -> str: ...
    def marked(self, index: int) -> bool: ...
    def mark_run(self, start: int, end: int) -> None: ...


def halfcell_rows(image: np.ndarray, cols: int, rows: int) -> list[list[Segment]]:
    """`rows` lines of `cols` half-block segments showing `image` (RGB) scaled to cols × 2·rows px."""
    px = np.asarray(Image.fromarray(image).resize((cols, 2 * rows), Image.Resampling.BOX))
    out = []
    for r in range(rows):
        top, bottom = px[2 * r], px[2 * r + 1]
        out.append([Segment(HALF, Style.from_color(Color.from_rgb(*t), Color.from_rgb(*b)))
                    for t, b in zip(top.tolist(), bottom.tolist(), strict=True)])
    return out


class FaceGrid(Widget, can_focus=True):
    """Arrows, page keys, home/end move the cursor; shift+arrows mark the faces passed over."""

    DEFAULT_CSS = """
    FaceGrid { height: 1fr; width: 1fr; }
    """
    BINDINGS = [
        Binding("up", "move(0, -1)", "Move", id="faces.grid.up", show=False),
        Binding("down", "move(0, 1)", "Move", id="faces.grid.down", show=False),
        Binding("left", "move(-1, 0)", "Move", id="faces.grid.left", show=False),
        Binding("right", "move(1, 0)", "Move", id="faces.grid.right", show=False),
        Binding("pageup", "page(-1)", "Page up", id="faces.grid.pageup", show=False),
        Binding("pagedown", "page(1)", "Page down", id="faces.grid.pagedown", show=False),
        Binding("home", "jump(0)", "First face", id="faces.grid.home", show=False),
        Binding("end", "jump(-1)", "Last face", id="faces.grid.end", show=False),
        Binding("shift+up", "move(0, -1, True)", "Mark a run", id="faces.grid.run_up", show=False),
        Binding("shift+down", "move(0, 1, True)", "Mark a run", id="faces.grid.run_down", show=False),
        Binding("shift+left", "move(-1, 0, True)", "Mark a run", id="faces.grid.run_left", show=False),
        Binding("shift+right", "move(1, 0, True)", "Mark a run", id="faces.grid.run_right", show=False),
    ]

    class Moved(Message):
        """The cursor moved (or the faces changed under it)."""

        def __init__(self, grid: FaceGrid, index: int):
            super().__init__()
            self.grid, self.index = grid, index

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.faces: FaceSource | None = None
        self.cursor = 0
        self.top = 0  # the first cell row on screen
        self.size_choice = 1
        self._cells: dict[int, list[list[Segment]] | None] = {}  # drawn thumbnails of the faces on screen

    # ---- geometry ------------------------------------------------------------------------------
    @property
    def cell(self) -> tuple[int, int]:
        return SIZES[self.size_choice]

    @property
    def cols(self) -> int:
        return max(1, (self.size.width + GAP) // (self.cell[0] + GAP))

    @property
    def visible_rows(self) -> int:
        return max(1, self.size.height // (self.cell[1] + 1))

    @property
    def page_size(self) -> int:
        return self.cols * self.visible_rows

    @property
    def count(self) -> int:
        return len(self.faces) if self.faces is not None else 0

    def visible(self) -> range:
        """Indexes of the faces on screen."""
        start = self.top * self.cols
        return range(start, min(self.count, start + self.page_size))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return container.height

    # ---- state ---------------------------------------------------------------------------------
    def show(self, faces: FaceSource, cursor: int = 0) -> None:
        """Show these faces (a new order or filter), the cursor at `cursor`."""
        self.faces = faces
        self._cells.clear()
        self.cursor = min(max(0, cursor), max(0, self.count - 1))
        self._scroll_to_cursor()
        self._moved()

    def redraw(self, thumbs: bool = False) -> None:
        """Redraw (thumbs=True: the thumbnails changed too, e.g. more were built)."""
        if thumbs:
            self._cells = {i: c for i, c in self._cells.items() if c is not None}
        self.refresh()

    def zoom(self) -> None:
        self.size_choice = (self.size_choice + 1) % len(SIZES)
        self._cells.clear()
        self._scroll_to_cursor()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        row = self.cursor // self.cols
        if row < self.top:
            self.top = row
        elif row >= self.top + self.visible_rows:
            self.top = row - self.visible_rows + 1
        self.top = max(0, min(self.top, max(0, (self.count - 1) // self.cols)))
        keep = set(self.visible())
        self._cells = {i: c for i, c in self._cells.items() if i in keep}

    def _moved(self) -> None:
        self.refresh()
        self.post_message(self.Moved(self, self.cursor))

    def go(self, index: int, run: bool = False) -> None:
        if not self.count:
            return
        index = min(max(0, index), self.count - 1)
        if run and self.faces is not None:
            self.faces.mark_run(self.cursor, index)
        self.cursor = index
        self._scroll_to_cursor()
        self._moved()

    def on_resize(self, event: events.Resize) -> None:
        self._cells.clear()
        self._scroll_to_cursor()

    # ---- keys and mouse ------------------------------------------------------------------------
    def action_move(self, dx: int, dy: int, run: bool = False) -> None:
        self.go(self.cursor + dx + dy * self.cols, run)

    def action_page(self, pages: int) -> None:
        self.top = max(0, self.top + pages * self.visible_rows)
        self.go(self.cursor + pages * self.page_size)

    def action_jump(self, where: int) -> None:
        self.go(0 if where == 0 else self.count - 1)

    def on_click(self, event: events.Click) -> None:
        cw, ch = self.cell
        col, row = event.x // (cw + GAP), event.y // (ch + 1)
        if col < self.cols:
            index = (self.top + row) * self.cols + col
            if index < self.count:
                self.go(index)

    # ---- drawing -------------------------------------------------------------------------------
    def _thumb_lines(self, index: int) -> list[list[Segment]] | None:
        if index not in self._cells:
            image = self.faces.thumb(index) if self.faces is not None else None
            cw, ch = self.cell
            self._cells[index] = None if image is None else halfcell_rows(image, cw, ch)
        return self._cells[index]

    def _placeholder(self, index: int, line: int) -> list[Segment]:
        cw, ch = self.cell
        bad = self.faces is not None and self.faces.unreadable(index)
        text = ("unreadable" if bad else "…")[:cw] if line == ch // 2 else ""
        style = Style(color="red" if bad else "grey50", bgcolor="grey15")
        return [Segment(text.center(cw), style)]

    def _label(self, index: int) -> list[Segment]:
        cw = self.cell[0]
        marked = self.faces.marked(index)
        text = (("✓" if marked else " ") + self.faces.label(index, cw - 1))[:cw].ljust(cw)
        style = Style(color="black", bgcolor="yellow", bold=True) if marked else Style(color="grey70")
        if index == self.cursor:
            style = style + Style(reverse=True, bold=True)
        return [Segment(text, style)]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if not self.count:
            text = "no faces to show" if y == 0 else ""
            return Strip([Segment(text.ljust(width), Style(color="grey50"))], width)
        cw, ch = self.cell
        row, line = self.top + y // (ch + 1), y % (ch + 1)
        if y >= self.visible_rows * (ch + 1):
            return Strip.blank(width)
        segments: list[Segment] = []
        for c in range(self.cols):
            index = row * self.cols + c
            if c:
                segments.append(Segment(" " * GAP))
            if index >= self.count:
                segments.append(Segment(" " * cw))
            elif line == ch:
                segments.extend(self._label(index))
            else:
                lines = self._thumb_lines(index)
                segments.extend(lines[line] if lines is not None else self._placeholder(index, line))
        return Strip(segments).adjust_cell_length(width)
