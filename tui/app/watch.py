"""Watching jobs for the TUI: incremental, coalesced, bounded.

A screen never re-reads a job's whole `events.jsonl`: a `JobWatch` keeps a byte offset (through
`core.jobs.events.EventReader`) and folds new events into a `JobDigest` — the newest progress, metrics,
preview and summary, a bounded tail of messages and a bounded loss history. The screen polls on a
timer and redraws only when the digest's `version` moved, so a job that writes hundreds of events
per second costs the UI one cheap fold per tick and a bounded amount of memory.

Plain Python, no Textual: the same objects are tested directly and used by every screen.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import JobError
from core.jobs import control as jobs
from core.jobs.events import EventReader

CHUNK_BYTES = 256 << 10  # bytes parsed per read; a poll reads several chunks within its time budget
POLL_BUDGET_S = 0.04  # the most one poll spends parsing, so catching up on a long run never freezes the UI
SERIES_CAPACITY = 1024  # points kept per loss series (older points thinned, never unbounded)
NOTES_KEPT = 200  # notable events (messages, state changes, previews, summaries) kept for the tail
LOG_LINES_KEPT = 500
TRAINING_KINDS = ("train", "selftest")  # kinds whose metrics events are a training curve


class Series:
    """(x, y) points in bounded memory: when full, every other point is dropped and the stride
    doubles, so the whole run stays visible at a resolution that fits any chart. The newest point
    is always kept so the chart follows the job."""

    def __init__(self, capacity: int = SERIES_CAPACITY):
        self.capacity = max(4, capacity)
        self.stride = 1
        self._seen = 0
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.last: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self.xs)

    def add(self, x: float, y: float) -> None:
        self.last = (x, y)
        if self._seen % self.stride == 0:
            self.xs.append(x)
            self.ys.append(y)
            if len(self.xs) >= self.capacity:
                self.xs, self.ys = self.xs[::2], self.ys[::2]
                self.stride *= 2
        self._seen += 1

    def points(self) -> tuple[list[float], list[float]]:
        """The kept points plus the newest one (when thinning skipped it)."""
        xs, ys = list(self.xs), list(self.ys)
        if self.last is not None and (not xs or xs[-1] != self.last[0]):
            xs.append(self.last[0])
            ys.append(self.last[1])
        return xs, ys


class Smoother:
    """Debiased exponential moving average (the smoothed curve next to the raw one)."""

    def __init__(self, weight: float = 0.9):
        self.weight = weight
        self._ema = 0.0
        self._n = 0

    def __call__(self, y: float) -> float:
        self._n += 1
        self._ema = self.weight * self._ema + (1 - self.weight) * y
        return self._ema / (1 - self.weight ** self._n)


class LossHistory:
    """Loss A and loss B over steps, raw and smoothed, each a bounded `Series`."""

    def __init__(self, capacity: int = SERIES_CAPACITY, smoothing: float = 0.9):
        self.raw = {"a": Series(capacity), "b": Series(capacity)}
        self.smooth = {"a": Series(capacity), "b": Series(capacity)}
        self._smoothers = {"a": Smoother(smoothing), "b": Smoother(smoothing)}
        self._last_step: float | None = None

    def __len__(self) -> int:
        return max(len(s) for s in self.raw.values())

    def add(self, ev: dict) -> bool:
        step = ev.get("step")
        if not isinstance(step, (int, float)):
            return False
        if self._last_step is not None and step < self._last_step:
            # A resumed job restarting its count below ours is a new curve, not a zig-zag.
            self.__init__(self.raw["a"].capacity, self._smoothers["a"].weight)
        self._last_step = step
        added = False
        for side in ("a", "b"):
            y = ev.get(f"loss_{side}")
            if isinstance(y, (int, float)) and math.isfinite(y):
                self.raw[side].add(float(step), float(y))
                self.smooth[side].add(float(step), self._smoothers[side](float(y)))
                added = True
        return added


@dataclass
class JobDigest:
    """Everything a screen shows about one job's stream, folded from its events."""

    state: str | None = None
    reason: str | None = None
    result: dict | None = None
    progress: dict | None = None
    metrics: dict | None = None
    preview: dict | None = None
    summary: dict | None = None
    first_t: float | None = None
    last_t: float | None = None
    events: int = 0
    corrupt: int = 0
    version: int = 0
    notes: deque = field(default_factory=lambda: deque(maxlen=NOTES_KEPT))
    notes_seen: int = 0
    loss: LossHistory = field(default_factory=LossHistory)

    def apply(self, events: list[dict]) -> bool:
        """Fold a batch of events in. Returns True when anything changed."""
        if not events:
            return False
        for ev in events:
            self.events += 1
            kind = ev.get("type")
            t = ev.get("t")
            if isinstance(t, (int, float)):
                self.first_t = t if self.first_t is None else self.first_t
                self.last_t = t
            if kind == "metrics":
                self.metrics = ev
                self.loss.add(ev)
            elif kind == "progress":
                self.progress = ev
            elif kind == "message":
                self._note(ev)
            elif kind == "preview":
                self.preview = ev
                self._note(ev)
            elif kind == "summary":
                self.summary = ev
                self._note(ev)
            elif kind == "state":
                self.state = ev.get("state", self.state)
                self.reason = ev.get("reason")
                self.result = ev.get("result")
                self._note(ev)
            elif kind == "corrupt":
                self.corrupt += 1
                self._note(ev)
        self.version += 1
        return True

    def _note(self, ev: dict) -> None:
        self.notes.append(ev)
        self.notes_seen += 1

    def new_notes(self, seen: int) -> list[dict]:
        """Notes appended after the first `seen` (as many as are still kept)."""
        new = min(self.notes_seen - seen, len(self.notes))
        return list(self.notes)[-new:] if new > 0 else []

    # ---- what the screens print --------------------------------------------------------------
    def elapsed_s(self) -> float | None:
        m = self.metrics or {}
        if isinstance(m.get("elapsed_s"), (int, float)):
            return float(m["elapsed_s"])
        if self.first_t is not None and self.last_t is not None:
            return self.last_t - self.first_t
        return None

    def eta_s(self) -> float | None:
        for ev in (self.metrics, self.progress):
            if ev and isinstance(ev.get("eta_s"), (int, float)):
                return float(ev["eta_s"])
        p = self.progress
        el = self.elapsed_s()
        if p and p.get("total") and p.get("done") and el:
            done, total = p["done"], p["total"]
            if 0 < done < total:
                return el / done * (total - done)
        return None

    def fraction(self) -> float | None:
        p = self.progress
        if p and p.get("total"):
            return max(0.0, min(1.0, (p.get("done") or 0) / p["total"]))
        return None


class JobWatch:
    """One job followed by offset. `poll()` reads what is new (within a time budget) and
    re-reads the job's state file; it returns True when the digest changed."""

    def __init__(self, job_dir: Path, chunk_bytes: int = CHUNK_BYTES, budget_s: float = POLL_BUDGET_S):
        self.dir = Path(job_dir)
        self.reader = EventReader(self.dir / jobs.EVENTS_FILE)
        self.digest = JobDigest()
        self.job: jobs.Job | None = None
        self.error: str | None = None
        self.chunk_bytes = chunk_bytes
        self.budget_s = budget_s
        self.caught_up = False

    @property
    def id(self) -> str:
        return self.dir.name

    def poll(self) -> bool:
        changed = self._read_state()
        deadline = time.monotonic() + self.budget_s
        self.caught_up = False
        while True:
            batch = self.reader.read_new(self.chunk_bytes)
            changed |= self.digest.apply(batch)
            if not batch or len(batch) == 0:
                self.caught_up = True
                break
            if time.monotonic() > deadline:
                break
        return changed

    def _read_state(self) -> bool:
        try:
            job = jobs.load_job(self.dir)
        except JobError as e:
            if self.error != str(e):
                self.error = str(e)
                self.digest.version += 1
                return True
            return False
        before = self.job
        self.job, self.error = job, None
        if before is None or (before.state, before.reason) != (job.state, job.reason):
            self.digest.version += 1
            return True
        return False

    @property
    def state(self) -> str:
        if self.job is not None:
            return self.job.state
        return self.digest.state or "unknown"

    @property
    def active(self) -> bool:
        return self.job is not None and self.job.active


class LogTail:
    """The newest lines of a job's log.txt, read by offset; never holds more than `keep` lines."""

    def __init__(self, path: Path, keep: int = LOG_LINES_KEPT, chunk_bytes: int = CHUNK_BYTES):
        self.path = Path(path)
        self.offset = 0
        self.keep = keep
        self.chunk_bytes = chunk_bytes
        self._partial = b""

    def read_new(self) -> list[str]:
        """Complete new lines since the last call (only the last `keep` of a large backlog)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:  # truncated or replaced: start again
            self.offset, self._partial = 0, b""
        if size - self.offset > self.chunk_bytes * 4:
            # A huge backlog: skip to its tail; the lines before would scroll away anyway.
            self.offset, self._partial = size - self.chunk_bytes, b""
            skip_partial = True
        else:
            skip_partial = False
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(size - self.offset)
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if skip_partial and lines:
            lines = lines[1:]
        return [ln.decode("utf-8", "replace").rstrip("\r") for ln in lines[-self.keep:]]


# ---- choosing which job a screen follows ------------------------------------------------------

def newest_job(project, kinds: tuple[str, ...]) -> jobs.Job | None:
    """The job a screen about `kinds` should follow: a running one first, else the newest."""
    candidates = [j for j in jobs.project_jobs(project) if j.kind in kinds]
    running = [j for j in candidates if j.active]
    if running:
        return running[0]
    return candidates[0] if candidates else None


# ---- formatting shared by screens (plain strings; no clocks) ---------------------------------

def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(max(0, round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def fmt_loss(x) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def fmt_progress(ev: dict | None) -> str:
    if not ev:
        return "-"
    done, total = ev.get("done"), ev.get("total")
    if total:
        return f"{done or 0}/{total}"
    return "-" if done is None else str(done)


def decimate(xs: list[float], ys: list[float], buckets: int, envelope: bool) -> tuple[list[float], list[float]]:
    """At most ~2 points per bucket of x, so a chart draws O(width) segments whatever the run length.

    `envelope` keeps each bucket's lowest and highest value (raw curves keep their noise band);
    otherwise each bucket is its mean (smoothed curves). The first and last points always stay.
    """
    n = len(xs)
    if n <= max(2, buckets * (2 if envelope else 1)):
        return list(xs), list(ys)
    x0, x1 = xs[0], xs[-1]
    width = (x1 - x0) / buckets or 1.0
    out_x: list[float] = []
    out_y: list[float] = []
    start = 0
    while start < n:
        b = min(buckets - 1, int((xs[start] - x0) / width))
        end = start
        while end < n and min(buckets - 1, int((xs[end] - x0) / width)) == b:
            end += 1
        seg_x, seg_y = xs[start:end], ys[start:end]
        if envelope and len(seg_y) > 1:
            i_lo = min(range(len(seg_y)), key=seg_y.__getitem__)
            i_hi = max(range(len(seg_y)), key=seg_y.__getitem__)
            for i in sorted({i_lo, i_hi}):
                out_x.append(seg_x[i])
                out_y.append(seg_y[i])
        else:
            out_x.append(sum(seg_x) / len(seg_x))
            out_y.append(sum(seg_y) / len(seg_y))
        start = end
    if out_x[0] != xs[0]:
        out_x.insert(0, xs[0])
        out_y.insert(0, ys[0])
    if out_x[-1] != xs[-1]:
        out_x.append(xs[-1])
        out_y.append(ys[-1])
    return out_x, out_y
