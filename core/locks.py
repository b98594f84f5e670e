"""Per-project locks naming their holder; a lock whose holder died is stale and recovered."""

from __future__ import annotations

import json
import os
from pathlib import Path

from core import procs
from core.errors import LockHeld
from core.project import Project, now_iso


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


def acquire(project: Project, name: str, job_id: str, pid: int | None = None) -> bool:
    """Take lock `name` for `job_id`. Returns True when a stale lock was recovered.

    Raises LockHeld naming the live holder.
    """
    path = lock_path(project, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    pid = pid or os.getpid()
    record = json.dumps({"pid": pid, "pid_start": procs.start_ticks(pid), "job": job_id, "acquired": now_iso()})
    recovered = False
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            info = read_lock(path)
            if info and procs.is_alive(info.get("pid"), info.get("pid_start")):
                raise LockHeld(
                    f"project {project.name!r} is busy: {name} lock held by job {info.get('job')} "
                    f"(pid {info.get('pid')}); wait for it or cancel it with `facepair job cancel {info.get('job')}`"
                ) from None
            # Stale: its holder is gone. Remove and retry (another process may win the race).
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            recovered = True
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(record)
        return recovered
    raise LockHeld(f"could not take the {name} lock of {project.name!r}: contended")


def release(project: Project, name: str, job_id: str) -> None:
    path = lock_path(project, name)
    info = read_lock(path)
    if info is not None and info.get("job") == job_id:
        path.unlink(missing_ok=True)
