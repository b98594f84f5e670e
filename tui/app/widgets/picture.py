"""A picture in the terminal: kitty graphics or sixel where the terminal speaks them, half-cell
blocks everywhere else (tmux, most SSH terminals, tests), and a line of text when there is none.

`textual_image.widget` asks the terminal what it supports when it is first imported, which only
works before Textual takes the terminal over: `tui.app.app.run_app` imports it early. Set
FACEPAIR_PICTURE=halfcell|sixel|tgp|auto to override the choice.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static

MODES = ("auto", "halfcell", "sixel", "tgp")


def picture_class(mode: str | None = None):
    """The textual-image widget class for `mode` (default: $FACEPAIR_PICTURE, else auto)."""
    from textual_image import widget as tiw
    from textual_image.renderable import Image as detected
    from textual_image.renderable.sixel import Image as sixel_renderable
    from textual_image.renderable.tgp import Image as tgp_renderable

    mode = (mode or os.environ.get("FACEPAIR_PICTURE") or "auto").lower()
    if mode == "sixel":
        return tiw.SixelImage
    if mode == "tgp":
        return tiw.TGPImage
    if mode == "auto":
        if detected is sixel_renderable:
            return tiw.SixelImage
        if detected is tgp_renderable:
            return tiw.TGPImage
    return tiw.HalfcellImage


def load_picture(path: str | os.PathLike) -> PILImage.Image:
    """Read a PNG fully into memory (the job may overwrite the file while we show it)."""
    with PILImage.open(path) as im:
        im.load()
        return im.convert("RGB")


class Picture(Container):
    """Shows a PIL image or an image file, scaled to fit; a caption when there is nothing to show."""

    DEFAULT_CSS = """
    Picture { height: 1fr; align: center middle; }
    Picture > .picture-image { width: auto; height: 100%; }
    Picture > .picture-text { width: 100%; height: auto; color: $text-muted; content-align: center middle; }
    """

    def __init__(self, placeholder: str = "no picture yet", *, mode: str | None = None,
                 id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.placeholder = placeholder
        self.mode = mode
        self.source: str | None = None
        self.image: PILImage.Image | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.placeholder, classes="picture-text")
        image = picture_class(self.app_mode())(None, classes="picture-image")
        image.display = False
        yield image

    def app_mode(self) -> str | None:
        return self.mode or getattr(self.app, "picture_mode", None)

    def show_path(self, path: str | os.PathLike, key: object = None) -> bool:
        """Show the image at `path`; False (keeping what was shown) when it cannot be read yet."""
        key = (str(path), key)
        if key == self.source:
            return True
        try:
            image = load_picture(path)
        except (OSError, ValueError, SyntaxError) as e:
            # Missing or half-written: keep the last good picture; say why only if there is none.
            if self.image is None:
                self.show_text(f"cannot read {Path(path).name}: {e.__class__.__name__}")
            return False
        self.source = key
        self.show_image(image)
        return True

    def show_image(self, image: PILImage.Image) -> None:
        self.image = image
        if not self.is_mounted:
            return
        widget = self.query_one(".picture-image")
        widget.image = image
        widget.display = True
        self.query_one(".picture-text", Static).display = False

    def show_text(self, text: str) -> None:
        self.image, self.source = None, None
        if not self.is_mounted:
            self.placeholder = text
            return
        widget = self.query_one(".picture-image")
        widget.image = None
        widget.display = False
        label = self.query_one(".picture-text", Static)
        label.update(text)
        label.display = True

    def on_mount(self) -> None:
        if self.image is not None:
            self.show_image(self.image)
