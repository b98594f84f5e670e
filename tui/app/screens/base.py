"""What every facepair screen shares: header and footer, a help text, and the poll tick.

A screen folds new state in on `app.poll_interval` ticks (only while it is the screen shown), and
reloads slower things (project files, job lists) every `app.list_interval`. Redraws happen only
on ticks, which bounds the redraw rate whatever the jobs write.
"""

from __future__ import annotations

import time

from textual.binding import Binding
from textual.screen import Screen


class FacepairScreen(Screen):
    HELP = ""
    BINDINGS = [Binding("escape", "back", "Back", id="screen.back")]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._last_reload = 0.0
        self.ticks = 0

    def on_mount(self) -> None:
        # Textual calls every class's on_mount in the MRO: subclasses hook in with `setup`.
        self.setup()
        self.reload()
        self.poll()
        self._last_reload = time.monotonic()
        self.set_interval(self.app.poll_interval, self._tick, name="poll")

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self._tick(force=True)

    def _tick(self, force: bool = False) -> None:
        if self.app.screen is not self and not force:
            return
        self.ticks += 1
        now = time.monotonic()
        if force or now - self._last_reload >= self.app.list_interval:
            self._last_reload = now
            self.reload()
        self.poll()

    def setup(self) -> None:
        """Once, when mounted, before the first reload and poll."""

    def reload(self) -> None:
        """Re-read files that change slowly (project.toml, job lists)."""

    def poll(self) -> None:
        """Fold in new job events and redraw what changed."""

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
