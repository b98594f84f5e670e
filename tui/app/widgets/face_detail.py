"""The selected face, larger: its crop with the landmarks drawn (core.faces.views) and its scores,
source and frame in words."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image as PILImage
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui.app.widgets.picture import Picture


def _num(value, fmt: str = ".1f", unit: str = "") -> str:
    if value is None or not math.isfinite(float(value)):
        return "–"
    if fmt == "deg":
        return f"{round(float(value)):+d}°"
    return f"{float(value):{fmt}}{unit}"


def _short(text: str, keep: int) -> str:
    return text if len(text) <= keep else text[: keep - 1] + "…"


def face_text(face: dict) -> Text:
    """The lines under the picture (each short enough for a 34-column pane), from the screen's
    dict of one face (name, source_name, frame, face, track, removed, scores)."""
    s = face["scores"]
    t = Text()
    t.append(face["name"].removesuffix(".png"), style="bold")
    t.append(f"\n{_short(face['source_name'], 18)} · frame {face['frame']}")
    if face.get("face"):
        t.append(f" · face {face['face']}")
    if face.get("track", -1) >= 0:
        t.append(f" · track {face['track']}", style="dim")
    t.append(f"\nblur {_num(s.get('blur'), '.0f')}  size {_num(s.get('size'), '.0f', ' px')}  "
             f"align {_num(s.get('align'), '.2f')}")
    t.append(f"\nyaw {_num(s.get('yaw'), 'deg')}  pitch {_num(s.get('pitch'), 'deg')}  roll {_num(s.get('roll'), 'deg')}")
    ident = s.get("identity")
    far = ident is not None and math.isfinite(ident) and ident > 0.6
    t.append("\nidentity ")
    t.append(_num(ident, ".2f"), style="bold red" if far else "")
    t.append(f"  change {_num(s.get('change'), '.3f')}")
    if face.get("removed"):
        t.append("  in the trash", style="yellow")
    return t


class FaceDetail(Vertical):
    """`show(face, image)`: the face's crop (RGB array, landmarks drawn) and its text; `clear(text)`."""

    DEFAULT_CSS = """
    FaceDetail { height: 1fr; }
    FaceDetail > #face-crop { height: 1fr; min-height: 3; }
    FaceDetail > #face-info { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Picture("no face selected", id="face-crop")
        yield Static("", id="face-info")

    def show(self, face: dict, image: np.ndarray | None, problem: str | None = None) -> None:
        picture = self.query_one("#face-crop", Picture)
        if image is not None:
            picture.show_image(PILImage.fromarray(image))
        else:
            picture.show_text(problem or "no picture")
        self.query_one("#face-info", Static).update(face_text(face))

    def clear(self, text: str) -> None:
        self.query_one("#face-crop", Picture).show_text(text)
        self.query_one("#face-info", Static).update("")
