"""The live loss chart: loss A and loss B over steps, raw and smoothed, linear or log scale.

Drawn with textual-plot from a `tui.app.watch.LossHistory` (bounded) and decimated to the chart's
width, so a redraw costs O(width) whatever the length of the run. The owner calls `update_from`
on its poll tick; the chart redraws only when the history changed (counted in `redraws`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import ExitStack

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_hires_canvas import Canvas
from textual_plot import HiResMode, PlotWidget
from textual_plot.axis_formatter import AxisFormatter

from tui.app.watch import LossHistory, decimate, fmt_loss

COLORS = {
    ("a", "smooth"): "rgb(0,150,255)",
    ("a", "raw"): "rgb(110,160,205)",
    ("b", "smooth"): "rgb(255,120,0)",
    ("b", "raw"): "rgb(215,165,120)",
}


class LogAxisFormatter(AxisFormatter):
    """Ticks for values plotted as log10(y): decades, plus 2× and 5× when the range is narrow."""

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        lo, hi = math.floor(min_), math.ceil(max_)
        ticks = [float(d) for d in range(lo, hi + 1)]
        if hi - lo <= 2:
            ticks = sorted(ticks + [d + math.log10(m) for d in range(lo, hi + 1) for m in (2, 5)])
        inside = [t for t in ticks if min_ - 1e-9 <= t <= max_ + 1e-9]
        while len(inside) > max_ticks:
            inside = inside[::2]
        return inside

    def get_labels_for_ticks(self, ticks: Sequence[float]) -> list[str]:
        return [f"{10 ** t:.3g}" for t in ticks]


class BatchedPlot(PlotWidget):
    """PlotWidget whose canvases refresh once per render instead of once per pixel set (the
    stock widget costs tens of thousands of refresh calls for a few hundred points)."""

    def _render_plot(self) -> None:
        with ExitStack() as stack:
            for canvas in self.query(Canvas):
                stack.enter_context(canvas.batch_refresh())
            super()._render_plot()


class LossChart(Vertical):
    """A caption line (legend, newest values, scale) over a PlotWidget."""

    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 8; }
    LossChart > #loss-caption { height: 1; padding: 0 1; }
    LossChart > PlotWidget { height: 1fr; }
    """

    MIN_INTERVAL_S = 1.0  # the chart redraws at most once a second for new points ("within a second or two")

    def __init__(self, *, min_interval: float | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.min_interval = self.MIN_INTERVAL_S if min_interval is None else min_interval
        self._last_redraw = float("-inf")
        self._pending = None
        self.log_scale = False
        self.show_raw = True
        self.show_smooth = True
        self.redraws = 0
        self.points_drawn = 0
        self._history: LossHistory | None = None
        self._version: object = None

    def compose(self) -> ComposeResult:
        yield Static(self._caption(), id="loss-caption")
        plot = BatchedPlot(id="loss-plot", allow_pan_and_zoom=False)
        plot.can_focus = False
        yield plot

    def on_mount(self) -> None:
        plot = self.query_one(PlotWidget)
        plot.margin_left = 8
        plot.margin_bottom = 2
        plot.margin_top = 0
        plot.set_xlabel("")
        plot.set_ylabel("")

    # ---- public ----------------------------------------------------------------------------
    def update_from(self, history: LossHistory, version: object, force: bool = False) -> bool:
        """Redraw from `history` when `version` moved (or `force`), at most once per
        `min_interval`: a later call inside the interval schedules one trailing redraw."""
        if not force and history is self._history and version == self._version:
            return False
        new_curve = history is not self._history
        self._history, self._version = history, version
        wait = self._last_redraw + self.min_interval - time.monotonic()
        if force or new_curve or wait <= 0:
            self.redraw()
        elif self._pending is None:
            self._pending = self.set_timer(wait, self._trailing_redraw)
        return True

    def _trailing_redraw(self) -> None:
        self._pending = None
        self.redraw()

    def toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        self.redraw()

    def cycle_view(self) -> str:
        """raw + smoothed → smoothed only → raw only → both."""
        if self.show_raw and self.show_smooth:
            self.show_raw = False
        elif self.show_smooth:
            self.show_raw, self.show_smooth = True, False
        else:
            self.show_smooth = True
        self.redraw()
        return self.view_name

    @property
    def view_name(self) -> str:
        if self.show_raw and self.show_smooth:
            return "raw+smooth"
        return "smooth" if self.show_smooth else "raw"

    # ---- drawing ---------------------------------------------------------------------------
    def redraw(self) -> None:
        if not self.is_mounted:
            return
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        self._last_redraw = time.monotonic()
        self.query_one("#loss-caption", Static).update(self._caption())
        plot = self.query_one(PlotWidget)
        plot.clear()
        h = self._history
        self.redraws += 1
        if h is None or len(h) == 0:
            plot.set_y_formatter(LogAxisFormatter() if self.log_scale else _linear())
            return
        # one bucket per cell column: braille gives two dots a cell, enough for a min/max pair
        buckets = max(8, plot.size.width - plot.margin_left) if plot.size.width else 64
        drawn = 0
        kinds = [k for k, on in (("raw", self.show_raw), ("smooth", self.show_smooth)) if on]
        for kind in kinds:
            for side in ("a", "b"):
                series = (h.raw if kind == "raw" else h.smooth)[side]
                xs, ys = series.points()
                if self.log_scale:
                    pairs = [(x, math.log10(y)) for x, y in zip(xs, ys, strict=True) if y > 0]
                    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
                if not xs:
                    continue
                xs, ys = decimate(xs, ys, buckets, envelope=(kind == "raw"))
                drawn += len(xs)
                plot.plot(xs, ys, line_style=COLORS[(side, kind)], hires_mode=HiResMode.BRAILLE)
        plot.set_y_formatter(LogAxisFormatter() if self.log_scale else _linear())
        self.points_drawn = drawn

    def _caption(self) -> Text:
        t = Text()
        h = self._history
        for side, label in (("a", "loss A"), ("b", "loss B")):
            t.append("━━ ", style=COLORS[(side, "smooth")])
            newest = None
            if h is not None and h.raw[side].last is not None:
                newest = h.raw[side].last[1]
            t.append(f"{label} {fmt_loss(newest)} ")
        t.append(f"{self.view_name}·{'log' if self.log_scale else 'lin'}", style="dim")
        return t


def _linear() -> AxisFormatter:
    from textual_plot import NumericAxisFormatter

    return NumericAxisFormatter()
