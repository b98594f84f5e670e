"""A grid of sample face thumbnails from `faces/a` or `faces/b`, shown as one picture.

The samples are spread evenly over the sorted file names (so they come from all sources, and the
same folder always gives the same grid); the montage is rebuilt only when the folder changed.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image as PILImage

from tui.app.widgets.picture import Picture

THUMB_PX = 48


def sample_faces(folder: Path, count: int) -> list[Path]:
    """Up to `count` face PNGs spread evenly over the folder's sorted listing."""
    try:
        names = sorted(p.name for p in Path(folder).iterdir() if p.suffix == ".png" and not p.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []
    if len(names) <= count:
        picked = names
    else:
        step = len(names) / count
        picked = [names[int(i * step)] for i in range(count)]
    return [Path(folder) / n for n in picked]


def montage(paths: list[Path], cols: int, cell: int = THUMB_PX) -> PILImage.Image | None:
    """A cols-wide grid of square thumbnails; unreadable files are skipped."""
    thumbs = []
    for p in paths:
        try:
            with PILImage.open(p) as im:
                im.load()
                thumbs.append(im.convert("RGB").resize((cell, cell), PILImage.Resampling.BILINEAR))
        except (OSError, ValueError, SyntaxError):
            continue
    if not thumbs:
        return None
    cols = max(1, min(cols, len(thumbs)))
    rows = (len(thumbs) + cols - 1) // cols
    sheet = PILImage.new("RGB", (cols * cell, rows * cell), (0, 0, 0))
    for i, t in enumerate(thumbs):
        sheet.paste(t, ((i % cols) * cell, (i // cols) * cell))
    return sheet


class ThumbGrid(Picture):
    """Sample faces of one side; `refresh_from(folder, face_count)` rebuilds when the count moved."""

    def __init__(self, count: int = 8, cols: int = 4, *, id: str | None = None, classes: str | None = None):
        super().__init__("no faces yet — extract to fill faces/", id=id, classes=classes)
        self.count = count
        self.cols = cols
        self._key: object = None

    def refresh_from(self, folder: Path, face_count: int) -> None:
        key = (str(folder), face_count)
        if key == self._key:
            return
        self._key = key
        sheet = montage(sample_faces(folder, self.count), self.cols) if face_count else None
        if sheet is None:
            self.show_text("no faces yet — extract to fill faces/")
        else:
            self.show_image(sheet)
