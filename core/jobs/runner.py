"""The process a detached job runs in (`python -m core.jobs.runner JOB_DIR`), and the context
a job kind's function gets: events, progress, cancellation.

Cancellation is cooperative first: SIGTERM or SIGINT sets `ctx.cancelled`; the job checks it at
safe points (after a batch, after a checkpoint) and stops cleanly. A second signal stops it at
once. `facepair job cancel` follows SIGTERM with SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import psutil

from core.errors import FacepairError, JobCancelled, LockHeld
from core.jaxmodels import xla_cpu
from core.jaxmodels.presets import PresetError
from core.jobs import kinds as jobkinds
from core.jobs import locks
from core.jobs.events import EventWriter
from core.jobs.record import JOB_FILE, load_job
from core.project.projects import Project, load_project, now_iso
from core.system import diskfull, procs


class JobContext:
    """What a running job uses to talk to the world: its folder, its project and its events."""

    PROGRESS_INTERVAL = 0.25  # seconds between progress events (the last one always goes out)

    def __init__(self, job, project: Project | None, writer: EventWriter,
                 on_event: Callable[[dict], None] | None = None):
        self.job = job
        self.project = project
        self.dir: Path = job.dir
        self._writer = writer
        self._on_event = on_event
        self._cancel_requests = 0
        self._pending: list[str] = []
        self._last_progress = 0.0

    @property
    def job_id(self) -> str:
        return self.job.id

    # ---- events ---------------------------------------------------------------------------
    def emit(self, type: str, **fields) -> dict:
        event = self._writer.write(type, **fields)
        if self._on_event is not None:
            self._on_event(event)
        return event

    def message(self, text: str, level: str = "info") -> None:
        self.emit("message", level=level, text=text)

    def warning(self, text: str) -> None:
        self.message(text, level="warning")

    def metrics(self, **fields) -> None:
        self.emit("metrics", **fields)

    def progress(self, done: int, total: int | None = None, stage: str | None = None, force: bool = False,
                 **extra) -> None:
        """Throttled: at most one progress event per PROGRESS_INTERVAL, plus the final one."""
        now = time.monotonic()
        final = total is not None and done >= total
        if not (force or final or now - self._last_progress >= self.PROGRESS_INTERVAL):
            return
        self._last_progress = now
        self.emit("progress", done=done, total=total, stage=stage, **extra)

    # ---- cancellation ---------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancel_requests > 0

    def request_cancel(self) -> None:
        self._cancel_requests += 1

    def check_cancelled(self) -> None:
        if self._cancel_requests:
            self.say_pending()
            raise JobCancelled()

    def say_pending(self) -> None:
        """Messages a signal handler could not write (it came while the main thread was writing an
        event: the file refuses a reentrant write), written now, from the main thread."""
        while self._pending:
            self.emit("message", level="warning", text=self._pending.pop(0))


def on_cancel_signal(ctx: JobContext, signum: int) -> None:
    """The first SIGTERM/SIGINT is a request the job sees; a second one stops it where it is."""
    ctx.request_cancel()
    if ctx._cancel_requests > 1:
        raise JobCancelled()
    text = f"cancel requested ({signal.Signals(signum).name})"
    try:
        ctx.emit("message", level="warning", text=text)
    except Exception:  # e.g. a reentrant write into the events file: said later, from the main thread
        ctx._pending.append(text)


def _install_signals(ctx: JobContext) -> None:
    def on_term(signum, frame):
        on_cancel_signal(ctx, signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def execute(job_dir: Path, on_event: Callable[[dict], None] | None = None, install_signals: bool = True) -> int:
    """Run the job in `job_dir` in this process, recording every state change. Returns an exit code."""
    xla_cpu.configure()  # before any kind starts JAX's backend (a no-op once it has started)
    job = load_job(Path(job_dir), check=False)
    if job.state != "queued":
        print(f"job {job.id} is {job.state}, not queued; not running it", file=sys.stderr)
        return 2
    locks.adopt_inherited(job.id)  # the model lock its starter passed down, if any
    writer = EventWriter(job.events_path)
    ctx = JobContext(job, None, writer, on_event)
    if install_signals:
        # Before the job says "running": a cancel that follows it at once is a request the job
        # sees (and may save for), not a default SIGTERM death.
        _install_signals(ctx)
    job.pid, job.pid_start = os.getpid(), procs.start_ticks(os.getpid())
    job.state, job.started = "running", now_iso()
    job.save()
    code = 1
    try:
        job.state, job.reason, job.result = "succeeded", None, _run_kind(ctx)
        code = 0
    except JobCancelled:
        job.state, job.reason = "cancelled", "cancelled on request"
        ctx.say_pending()
        code = 130
    except KeyboardInterrupt:
        job.state, job.reason = "cancelled", "interrupted"
        code = 130
    except (FacepairError, LockHeld, PresetError) as e:  # a user's error: its one line, no traceback
        job.state, job.reason = "failed", str(e)
        _log(f"error: {e}")
    except MemoryError:
        job.state, job.reason = "failed", "out of memory"
        _log_traceback()
    except Exception as e:
        if diskfull.is_disk_full(e):  # OSError ENOSPC, or a library's wrapping of it (tensorstore)
            job.state, job.reason = "failed", diskfull.describe(e, fallback=job.dir, outcome=diskfull.JOB_STOPPED)
        elif isinstance(e, OSError):
            job.state, job.reason = "failed", _os_reason(e)
        else:  # a bug: keep the traceback in log.txt, the gist in job.json
            job.state, job.reason = "failed", f"{type(e).__name__}: {e}"
        _log_traceback()
    finally:
        job.ended = now_iso()
        try:
            event = writer.write("state", state=job.state, reason=job.reason, result=job.result)
            if on_event is not None:
                on_event(event)
        except OSError:
            pass
        writer.close()
        job.save()
    return code


def _run_kind(ctx: JobContext) -> dict | None:
    """The job proper: its project, the model lock when the kind writes the model (held until the
    kind returns or raises), a tidy-up of killed jobs' partial outputs, then the kind's function."""
    job = ctx.job
    ctx.project = project = load_project(job.dir.parent.parent.parent, job.project)
    ctx.emit("state", state="running", pid=job.pid, kind=job.kind)
    writes_model = jobkinds.writes_model(job.kind, job.args)
    # Usually handed down by start_job (same job id, adopted above); taken here when run inline.
    if writes_model and locks.acquire(project, "model", job.id, job.pid):
        ctx.message("recovered a stale model lock left by a job that is gone", level="warning")
    try:
        try:
            clean_dead_partials(project, ctx)
        except OSError as e:  # tidying up must never stop a job
            ctx.warning(f"could not remove partial outputs of killed jobs: {e}")
        result = jobkinds.resolve(job.kind)(ctx, **job.args)
    finally:
        if writes_model:
            locks.release(project, "model", job.id)
    return result if isinstance(result, dict) else None


def clean_dead_partials(project: Project, ctx: JobContext | None = None) -> list[Path]:
    """Remove the partial outputs (`.NAME.partial-PID…`) that killed jobs of `project` left: in
    the output folder and beside every output a job of the project named. Only partials whose
    PID is dead go; a live job's (or any live process's) stay."""
    from core.media import write as video_out
    from core.system.atomic import read_json

    dirs = {project.output_dir}
    runs = project.runs_dir
    if runs.is_dir():
        for d in runs.iterdir():
            try:
                record = read_json(d / JOB_FILE)
            except (OSError, ValueError):
                continue
            if not isinstance(record, dict):
                continue
            for value in ((record.get("args") or {}).get("output"), (record.get("result") or {}).get("output")):
                if isinstance(value, str) and value:
                    out = Path(value).expanduser()
                    dirs.add(out.parent)
                    dirs.add(out)  # an output given as a folder
    removed = []
    for d in dirs:
        removed += video_out.clean_dead_partials_in(d)
    if removed and ctx is not None:
        ctx.message(f"removed {len(removed)} partial output(s) left by killed jobs: "
                    + ", ".join(str(p) for p in removed[:5]))
    return removed


def reap_group() -> list[int]:
    """Kill what is left of this runner's process group (workers, encoders) once the job has
    ended. Only when this process leads its own group (a detached runner), never inline. The
    multiprocessing resource tracker is left to exit by itself (it unlinks leaked semaphores)."""
    me = os.getpid()
    try:
        if os.getpgid(0) != me:
            return []
    except OSError:
        return []
    killed = []
    for pid in procs.group_members(me):
        if pid == me:
            continue
        try:
            if any("resource_tracker" in part for part in psutil.Process(pid).cmdline()):
                continue
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except (psutil.Error, OSError):
            continue
    return killed


def _os_reason(e: OSError) -> str:
    return f"{type(e).__name__}: {e}"


def _log(text: str) -> None:
    """To log.txt (stderr), which a full disk may refuse: then the reason in job.json must do."""
    try:
        print(text, file=sys.stderr)
    except OSError:
        pass


def _log_traceback() -> None:
    try:
        traceback.print_exc()
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m core.jobs.runner JOB_DIR", file=sys.stderr)
        return 2
    try:
        return execute(Path(argv[0]))
    finally:
        reap_group()


if __name__ == "__main__":
    sys.exit(main())
