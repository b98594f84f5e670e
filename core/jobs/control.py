"""Detached jobs: the state files under `PROJECT/runs/JOB/`, starting, listing and cancelling.

A job is a folder: `job.json` (kind, args, pid, state, times, reason, result), `events.jsonl`
(append-only progress/metrics/messages) and `log.txt` (the process's stdout and stderr).
Anything that watches a job reads those files; nothing else is shared with it.

States: queued → running → succeeded | failed | cancelled. A job whose process has gone while
it still says queued/running is marked failed ("process vanished") by whoever looks first.

The record (`Job`, job.json checked field by field, `load_job`) is `core.jobs.record`, re-exported
here. The listings (`project_jobs`, `all_jobs`, `find_job`) show a folder whose job.json cannot be
read as a job in the state `unreadable` whose reason says why, so one bad job never hides the others.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from core.errors import JobError
from core.jobs import kinds as jobkinds
from core.jobs import locks
from core.jobs.events import EventReader
from core.jobs.record import (  # noqa: F401
    ACTIVE,
    EVENTS_FILE,
    FINAL,
    JOB_FILE,
    LAUNCH_FILE,
    LOG_FILE,
    UNREADABLE,
    VANISHED,
    Job,
    load_job,
)
from core.project.projects import Project, now_iso, project_names
from core.system import procs
from core.system.atomic import atomic_write_json


def new_job_id(kind: str) -> str:
    return f"{kind}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def create_job(project: Project, kind: str, args: dict, job_id: str | None = None) -> Job:
    jobkinds.resolve(kind)  # unknown kinds fail here, before any folder exists
    job_id = job_id or new_job_id(kind)
    job_dir = project.runs_dir / job_id
    job_dir.mkdir(parents=True)
    job = Job(dir=job_dir, id=job_id, kind=kind, project=project.name, args=args, state="queued", created=now_iso())
    try:
        job.save()
    except BaseException:  # e.g. a full disk: leave no empty job folder behind
        shutil.rmtree(job_dir, ignore_errors=True)
        raise
    return job


def _jobs_in(runs: Path, unreadable: bool) -> list[Job]:
    out = []
    try:
        dirs = [d for d in runs.iterdir() if (d / JOB_FILE).is_file()]
    except OSError:
        return out
    for d in dirs:
        try:
            out.append(load_job(d))
        except JobError as e:
            if unreadable:
                out.append(Job.unreadable(d, str(e)))
    return out


def project_jobs(project: Project, unreadable: bool = True) -> list[Job]:
    """Jobs of one project, newest first. A folder whose job.json cannot be read is listed as a
    job in the state `unreadable` (reason: why), or left out with `unreadable=False`."""
    return sorted(_jobs_in(project.runs_dir, unreadable), key=lambda j: (j.created, j.id), reverse=True)


def all_jobs(home: Path, unreadable: bool = True) -> list[Job]:
    """Every job of every project in `home`, newest first (unreadable ones as in `project_jobs`)."""
    out = []
    for name in project_names(home):
        out.extend(_jobs_in(Path(home) / name / "runs", unreadable))
    return sorted(out, key=lambda j: (j.created, j.id), reverse=True)


def find_job(home: Path, job_id: str) -> Job:
    """A job by id (or a unique prefix of one). An empty id is an error, not a prefix of every job."""
    if not job_id or not job_id.strip():
        raise JobError("no job id given: name a job (see `facepair jobs` for the ids)")
    matches = [j for j in all_jobs(home) if j.id == job_id] or [
        j for j in all_jobs(home) if j.id.startswith(job_id)
    ]
    if not matches:
        raise JobError(f"no job {job_id!r} in {home} (see `facepair jobs`)")
    if len(matches) > 1:
        raise JobError(f"job id {job_id!r} is ambiguous: {', '.join(j.id for j in matches[:5])}")
    return matches[0]


# ---- starting -------------------------------------------------------------------------------

_children: list[subprocess.Popen] = []


def _reap_forever() -> None:
    while True:
        for p in list(_children):
            if p.poll() is not None:
                _children.remove(p)
        time.sleep(0.5)


_reaper: threading.Thread | None = None


def start_job(project: Project, kind: str, args: dict | None = None) -> Job:
    """Start a detached job: its own session (no controlling terminal), so SIGHUP and an SSH
    logout do not reach it. Returns at once with the job queued or running."""
    global _reaper
    args = dict(args or {})
    jobkinds.resolve(kind)  # an unknown kind fails before any lock or folder exists
    jobkinds.check_args(kind, args)  # so do arguments its spec refuses (job.json keeps them as given)
    writes_model = jobkinds.writes_model(kind, args)
    job_id = new_job_id(kind)
    if writes_model:
        # The start itself is exclusive: this process takes the model lock for the new job (of
        # two concurrent starts exactly one gets it; the other is refused here, before it says
        # "started") and hands it to the runner once it exists.
        locks.acquire(project, "model", job_id)
    job = None
    try:
        job = create_job(project, kind, args, job_id=job_id)
        proc = _spawn_runner(project, job)
    except BaseException:
        if job is not None:  # e.g. the disk filled before the runner was recorded: no half-made job
            shutil.rmtree(job.dir, ignore_errors=True)
        if writes_model:
            locks.release(project, "model", job_id)
        raise
    if writes_model:
        locks.hand_over(project, "model", job.id, proc.pid)
    job.pid = proc.pid
    _children.append(proc)
    if _reaper is None:
        _reaper = threading.Thread(target=_reap_forever, name="facepair-reaper", daemon=True)
        _reaper.start()
    return job


def _spawn_runner(project: Project, job: Job) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    # The runner must import the same `core` as this process, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # The locks taken for the job (the model lock) are passed down open: the runner holds them on.
    env.pop(locks.INHERIT_ENV, None)
    lock_env, lock_fds = locks.inherited_env(job.id)
    env.update(lock_env)
    with open(job.log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.jobs.runner", str(job.dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=str(project.root), env=env, start_new_session=True, close_fds=True, pass_fds=lock_fds,
        )
    # The runner is the only writer of job.json once it runs; the launch record lets a reader
    # notice a runner that died before writing its first state. Without it nobody could tell the
    # runner's fate, so a runner whose record cannot be written is stopped.
    try:
        atomic_write_json(job.dir / LAUNCH_FILE, {"pid": proc.pid, "pid_start": procs.start_ticks(proc.pid)})
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def run_inline(project: Project, kind: str, args: dict | None = None,
               on_event: Callable[[dict], None] | None = None) -> Job:
    """Run a job in this process (same files, same states): for tests and nested stages."""
    from core.jobs.runner import execute

    job = create_job(project, kind, dict(args or {}))
    execute(job.dir, on_event=on_event, install_signals=False)
    return load_job(job.dir, check=False)


# ---- watching and stopping ------------------------------------------------------------------

def follow(job: Job, poll: float = 0.2, from_start: bool = True) -> Iterator[dict]:
    """Yield the job's events as they arrive until it reaches a final state."""
    reader = EventReader(job.events_path)
    if not from_start and job.events_path.exists():
        reader.offset = job.events_path.stat().st_size
    while True:
        yield from reader.read_new()
        current = load_job(job.dir)
        if not current.active:
            yield from reader.read_new()
            return
        time.sleep(poll)


def wait(job: Job, timeout: float | None = None, poll: float = 0.1) -> Job:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        current = load_job(job.dir)
        if not current.active:
            return current
        if deadline is not None and time.monotonic() > deadline:
            raise JobError(f"job {job.id} still {current.state} after {timeout:g} s")
        time.sleep(poll)


def cancel_job(job: Job, grace: float | None = None) -> Job:
    """SIGTERM the job's process group, wait `grace` seconds (default: its kind's, time to save),
    then SIGKILL."""
    grace = jobkinds.grace(job.kind) if grace is None else grace
    job = load_job(job.dir)
    if not job.active:
        return job
    if not job.pid:
        job.state, job.reason, job.ended = "cancelled", "cancelled before it started", now_iso()
        job.save()
        return job
    _signal_group(job.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not procs.is_alive(job.pid, job.pid_start):
            break
        time.sleep(0.05)
    killed = False
    if procs.is_alive(job.pid, job.pid_start):
        _signal_group(job.pid, signal.SIGKILL)
        killed = True
        for _ in range(100):
            if not procs.is_alive(job.pid, job.pid_start):
                break
            time.sleep(0.05)
    current = load_job(job.dir, check=False)
    if current.active or current.reason == VANISHED:
        current.state = "cancelled"
        current.reason = f"killed after a {grace:g} s grace period" if killed else "cancelled"
        current.ended = current.ended or now_iso()
        current.save()
    return current


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the runner leads its own session, so its pgid is its pid
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

