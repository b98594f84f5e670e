"""Following a job until it ends: its new events, or its log, as they arrive.

The one loop every follower shares: the command line's progress bar, `facepair job log -f`, the
train command's device line, and the stages the demo and the quality benchmark run as jobs of
their own. Whether the job has ended is read before each read, so the last read comes after the
job's last write: a final event or a final traceback is never missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from core.jobs import control
from core.jobs.events import EventReader

# Runs once a poll while the job is still active (after that poll's read): it may cancel the job
# or raise; returning True stops following while the job goes on.
Tick = Callable[[control.Job], bool | None]


def until_ended(job: control.Job, read: Callable[[], Iterable], poll: float = 0.2,
                tick: Tick | None = None) -> Iterator:
    """Yield what `read()` returns, poll after poll, until the job is no longer active."""
    while True:
        current = control.load_job(job.dir)
        yield from read()
        if not current.active:
            return
        if tick is not None and tick(current):
            return
        time.sleep(poll)


def events(job: control.Job, poll: float = 0.2, from_start: bool = True,
           tick: Tick | None = None) -> Iterator[dict]:
    """The job's events as they arrive, until it reaches a final state (and its last events)."""
    reader = EventReader(job.events_path)
    if not from_start and job.events_path.exists():
        reader.offset = job.events_path.stat().st_size
    return until_ended(job, reader.read_new, poll, tick)


class LogTail:
    """Reads what was appended to a text file since the last call (the job's log)."""

    def __init__(self, path: str | Path, offset: int = 0):
        self.path = Path(path)
        self.offset = offset

    def read_new(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        return [chunk.decode("utf-8", "replace")] if chunk else []


def log(job: control.Job, follow: bool = True, poll: float = 0.3) -> Iterator[str]:
    """The job's log in pieces: what is there now, then (with `follow`) the rest until it ends."""
    return until_ended(job, LogTail(job.log_path).read_new, poll, tick=None if follow else lambda _: True)
