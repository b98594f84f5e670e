"""A bounded, scrolling tail of a job's notable events (messages, state changes, previews,
summaries) or of its log lines. Progress and metrics are not listed: they are shown as the
newest values elsewhere, so a fast job cannot flood the tail."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.text import Text
from textual.widgets import RichLog

from tui.app.watch import NOTES_KEPT, JobDigest
from tui.styles import LEVEL_STYLE, job_state_style


def note_line(ev: dict) -> Text:
    """One line for a notable event, stamped with the event's own time (local clock)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(ev.get("t", 0) or 0))
    line = Text(f"{stamp} ", style="dim")
    kind = ev.get("type")
    if kind == "message":
        line.append(str(ev.get("text", "")), style=LEVEL_STYLE.get(ev.get("level", "info"), ""))
    elif kind == "state":
        state = str(ev.get("state"))
        line.append(f"state: {state}", style=job_state_style(state))
        if ev.get("reason"):
            line.append(f" — {ev['reason']}")
    elif kind == "preview":
        line.append(f"preview at step {ev.get('step', '?')}: {Path(str(ev.get('path', ''))).name}", style="dim")
    elif kind == "summary":
        fields = {k: v for k, v in ev.items() if k not in ("t", "type")}
        line.append("summary: " + json.dumps(fields, separators=(", ", ": "), default=str))
    elif kind == "corrupt":
        line.append(f"unreadable event line: {ev.get('raw', '')}", style="red")
    else:
        line.append(json.dumps(ev, default=str))
    return line


class EventTail(RichLog):
    """At most `max_lines` lines; `follow(digest)` appends only the notes that are new."""

    DEFAULT_CSS = """
    EventTail { height: 1fr; min-height: 3; }
    """

    def __init__(self, max_lines: int = NOTES_KEPT, *, id: str | None = None, classes: str | None = None):
        super().__init__(max_lines=max_lines, wrap=True, markup=False, highlight=False, id=id, classes=classes)
        self._seen = 0
        self._digest: JobDigest | None = None

    def follow(self, digest: JobDigest) -> None:
        if digest is not self._digest:
            self.clear()
            self._digest, self._seen = digest, 0
        for ev in digest.new_notes(self._seen):
            self.write(note_line(ev))
        self._seen = digest.notes_seen

    def add_lines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(Text(line))
