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
    return f"{float(value):{fmt}}{unit}"


def face_text(face: dict) -> Text:
    """The lines under the picture, from the screen's dict of one face (name, source, scores…)."""
    t = Text()
    t.append(face["name"].removesuffix(".png"), style="bold")
    t.append(f"\n{face['source_name']} · frame {face['frame']} · face {face['face']}")
    if face.get("track", -1) >= 0:
        t.append(f" · track {face['track']}", style="dim")
    s = face["scores"]
    t.append(f"\nblur {_num(s.get('blur'))}  size {_num(s.get('size'), '.0f', ' px')}")
    t.append(f"\nyaw {_num(s.get('yaw'), '+.0f', '°')}  pitch {_num(s.get('pitch'), '+.0f', '°')}  "
             f"roll {_num(s.get('roll'), '+.0f', '°')}")
    ident = s.get("identity")
    far = ident is not None and math.isfinite(ident) and ident > 0.6
    t.append("\nidentity ")
    t.append(_num(ident, ".2f"), style="bold red" if far else "")
    t.append(f"  align {_num(s.get('align'), '.3f')}  change {_num(s.get('change'), '.3f')}")
    if face.get("removed"):
        t.append("\nin the trash", style="yellow")
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
