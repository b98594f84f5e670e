"""A job's event stream: `events.jsonl`, one JSON object a line, append-only.

Writers append whole lines and flush; readers keep a byte offset and only ever parse complete
lines, so a reader polling while a writer appends never sees half an event. A complete line that
is not a JSON object (garbage, a torn write, `[]`, `"text"`) is handed on as one
`{"type": "corrupt", "raw": ...}` event, so readers count and skip it and every event is a dict.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every reader can parse every line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / jax scalars
        return _clean(value.item())
    return value


class EventWriter:
    """Appends events; each carries `t` (unix time) and `type`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, type: str, **fields: Any) -> dict:
        event = {"t": round(time.time(), 3), "type": type, **_clean(fields)}
        self._f.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._f.flush()
        return event

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EventReader:
    """Reads new complete events since the last call, by file offset (cheap to poll)."""

    def __init__(self, path: str | os.PathLike, offset: int = 0):
        self.path = Path(path)
        self.offset = offset

    def read_new(self, max_bytes: int = 8 << 20) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(max_bytes)
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        events = []
        for line in chunk[: end + 1].splitlines():
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                ev = None
            if not isinstance(ev, dict):  # garbage, or valid JSON that is not an event ([], "text", 3)
                ev = {"type": "corrupt", "raw": line[:200].decode("utf-8", "replace")}
            events.append(ev)
        self.offset += end + 1
        return events


def read_events(path: str | os.PathLike) -> list[dict]:
    """Every complete event in the file (for small streams and tests); lines that are not events
    come as `corrupt` events (see `split_corrupt`)."""
    reader = EventReader(path)
    out: list[dict] = []
    while batch := reader.read_new():
        out.extend(batch)
    return out


def last_event(path: str | os.PathLike, type: str, window: int = 256 << 10) -> dict | None:
    """The newest event of `type`, reading only the file's tail (for summaries of long runs)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    with open(path, "rb") as f:
        f.seek(max(0, size - window))
        lines = f.read().splitlines()
    for line in reversed(lines):
        try:
            ev = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(ev, dict) and ev.get("type") == type:
            return ev
    return None


def split_corrupt(events: list[dict]) -> tuple[list[dict], int]:
    """(the real events, how many `corrupt` lines were among them)."""
    good = [ev for ev in events if ev.get("type") != "corrupt"]
    return good, len(events) - len(good)
