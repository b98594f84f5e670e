"""Two small yaw × pitch maps side by side: the target footage's faces (side A) and side B's, one
character a pose bin shaded by how many faces it holds; on B's map the bins where A has faces and
B has none are red ×, and the selected face's bin is reversed. The counts come from
core.faces.coverage; this only draws them."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.widgets import Static

SHADES = " ░▒▓█"


def shade(count: int, top: int) -> str:
    if count <= 0:
        return "·"
    level = 1 + int((len(SHADES) - 2) * np.log1p(count) / np.log1p(max(top, 1)))
    return SHADES[min(level, len(SHADES) - 1)]


def pose_map_text(target, other, lacking: np.ndarray, share: float | None,
                  selected: tuple[int, int] | None = None, selected_map: int = 1) -> Text:
    """The maps as text: `target`, `other` (PoseHistogram), `lacking` (bool mask of bins),
    `selected`: the (row, column) bin of the selected face, drawn reversed on map `selected_map`
    (0 the target's, 1 the other's)."""
    rows, cols = target.counts.shape
    t = Text()
    t.append(f"{'A target'.ljust(cols)}  {'B'.ljust(cols)}", style="bold")
    t.append(" yaw→\n", style="dim")
    for r in range(rows):
        for m, hist in enumerate((target, other)):
            top = int(hist.counts.max()) if hist.total else 1
            for c in range(cols):
                count = int(hist.counts[r, c])
                if m == 1 and lacking[r, c]:
                    ch, style = "×", "bold red"
                else:
                    ch, style = shade(count, top), ("dim" if count == 0 else "cyan" if m == 0 else "green")
                if selected == (r, c) and m == selected_map:
                    style += " reverse"
                t.append(ch, style=style)
            t.append("  " if m == 0 else "\n")
    t.append("× ", style="bold red")
    t.append("A has, B lacks", style="dim")
    if share is not None:
        t.append(f" · B has {100 * share:.0f}%", style="bold" if share >= 0.9 else "yellow")
    return t


class PoseMap(Static):
    """`show(target, other, lacking, share, selected=, selected_map=)` redraws the maps."""

    DEFAULT_CSS = """
    PoseMap { height: auto; }
    """

    def show(self, target, other, lacking: np.ndarray, share: float | None,
             selected: tuple[int, int] | None = None, selected_map: int = 1) -> None:
        self.update(pose_map_text(target, other, lacking, share, selected, selected_map))
