"""Per-project locks naming their holder; a lock whose holder died is stale and recovered.

A lock is a small JSON file (`runs/.NAME.lock`: pid, pid_start, job, acquired). Every change to
it (take, hand over, release) happens under an flock on `runs/.NAME.lock.guard`, so deciding
"free or stale" and writing the new holder is one step: of two processes racing for a free or
stale lock exactly one wins. The flock itself dies with its process, so the guard never goes stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from core.errors import LockHeld
from core.project.projects import Project, now_iso
from core.system import procs


def lock_path(project: Project, name: str) -> Path:
    return project.runs_dir / f".{name}.lock"


def read_lock(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def holder(project: Project, name: str) -> dict | None:
    """The live holder of lock `name`, or None (a stale lock counts as free)."""
    info = read_lock(lock_path(project, name))
    if info is None:
        return None
    if procs.is_alive(info.get("pid"), info.get("pid_start")):
        return info
    return None


@contextlib.contextmanager
def _guard(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path) + ".guard", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def _write(path: Path, record: dict) -> None:
    """Replace the lock file whole; a failed write (a full disk) leaves no temp file and names
    the lock it was writing."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(record))
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.filename is None:
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def busy_message(project: Project, name: str, info: dict) -> str:
    return (f"project {project.name!r} is busy: {name} lock held by job {info.get('job')} "
            f"(pid {info.get('pid')}); wait for it or cancel it with `facepair job cancel {info.get('job')}`")


def acquire(project: Project, name: str, job_id: str, pid: int | None = None) -> bool:
    """Take lock `name` for `job_id` (held by process `pid`, default this one). Returns True when
    a stale lock was recovered.

    A lock already held for the same `job_id` is taken over (a job's starter hands its lock to
    the job's process). Raises LockHeld naming a live holder of another job.
    """
    path = lock_path(project, name)
    pid = pid or os.getpid()
    with _guard(path):
        info = read_lock(path)
        live = info is not None and procs.is_alive(info.get("pid"), info.get("pid_start"))
        if live and info.get("job") != job_id:
            raise LockHeld(busy_message(project, name, info))
        _write(path, {"pid": pid, "pid_start": procs.start_ticks(pid), "job": job_id, "acquired": now_iso()})
        return info is not None and not live and info.get("job") != job_id


def hand_over(project: Project, name: str, job_id: str, pid: int) -> None:
    """Give lock `name`, held for `job_id`, to process `pid` (the job's runner). No-op when the
    lock no longer names `job_id` (the runner finished and released it already)."""
    path = lock_path(project, name)
    with _guard(path):
        info = read_lock(path)
        if info is not None and info.get("job") == job_id:
            _write(path, {**info, "pid": pid, "pid_start": procs.start_ticks(pid)})


def release(project: Project, name: str, job_id: str) -> None:
    path = lock_path(project, name)
    with _guard(path):
        info = read_lock(path)
        if info is not None and info.get("job") == job_id:
            path.unlink(missing_ok=True)
