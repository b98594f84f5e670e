"""Per-project locks that cannot be stolen: an `flock` held for the holder's whole life.

A lock is the file `runs/.NAME.lock`. Its holder keeps it open with an exclusive `flock`, so the
kernel releases it when the holder exits or is killed: no lock is ever "stale", and nobody has to
decide whether a recorded pid is still alive. The file also names the holder (pid, pid_start, job,
acquired) for the refusal message.

Taking, renaming and releasing happen under a short flock on `runs/.NAME.lock.guard`, so the lock
file is never replaced or removed between another process opening and locking it, and a refusal
reads the winner's record, not a half-written one.

A job's starter takes the model lock and hands it to the job's process: the runner inherits the
open file (`inherited_env` + `pass_fds`) and adopts it (`adopt_inherited`); the lock stays held
across the hand-over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from pathlib import Path

from core.errors import LockHeld
from core.project.projects import Project, now_iso
from core.system import procs

INHERIT_ENV = "FACEPAIR_LOCK_FDS"  # "FD:PATH;FD:PATH…": lock files a runner inherits from its starter

# The locks this process holds: lock file path → (open fd with the flock, job id).
_held: dict[str, tuple[int, str]] = {}
_held_mutex = threading.Lock()

# How long a taker waits for the flock of a holder that has died but whose files the kernel is
# still closing (see `_flock_unless_live_holder`).
DYING_HOLDER_WAIT_S = 15.0


def lock_path(project: Project, name: str) -> Path:
    return project.runs_dir / f".{name}.lock"


def _key(path: Path | str) -> str:
    """A lock file's name in `_held`: one spelling however the project's folder was reached."""
    return os.path.realpath(path)


def read_lock(path: Path) -> dict | None:
    """The record in a lock file: None when there is no file, {} when it is empty or unreadable."""
    try:
        return _parse(path.read_bytes())
    except FileNotFoundError:
        return None


def _parse(data: bytes) -> dict:
    try:
        record = json.loads(data.decode("utf-8") or "{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


@contextlib.contextmanager
def _guard(path: Path, create: bool = True):
    """The short flock every change takes. A reader (`create=False`) never creates the file: where
    it is missing nobody has taken the lock through here, and a read-only project stays readable."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(path) + ".guard", os.O_CREAT | os.O_RDWR, 0o644)
    else:
        try:
            fd = os.open(str(path) + ".guard", os.O_RDONLY)
        except OSError:
            fd = None
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def _is_locked(path: Path) -> bool:
    """Does some process hold the flock on `path`? (Under the guard: nobody takes it meanwhile.)"""
    if _key(path) in _held:
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's flock, if it got it
    return False


def _flock_unless_live_holder(fd: int, wait_s: float | None = None) -> dict | None:
    """Take the flock on `fd` (None), or return the holder's record when a live process holds it.

    A holder killed with SIGKILL reads as dead (its main thread a zombie) a moment before the
    kernel has closed its files: its other threads are still tearing down gigabytes of JAX and
    dlib memory. A resume started in that moment waits (up to `wait_s`, default DYING_HOLDER_WAIT_S)
    for the flock instead of calling the project busy."""
    deadline = time.monotonic() + (DYING_HOLDER_WAIT_S if wait_s is None else wait_s)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            info = _parse(os.pread(fd, 4096, 0))
            pid = info.get("pid") if isinstance(info.get("pid"), int) else None
            if pid is None or procs.is_alive(pid, info.get("pid_start")) or time.monotonic() > deadline:
                return info
            time.sleep(0.05)


def _write(fd: int, path: Path, record: dict) -> None:
    """Rewrite the lock file's record in place (the flock is on this file: it is never replaced).
    New bytes first, then the cut, so a failed write (a full disk) keeps the old record readable; the
    error names the lock file."""
    data = json.dumps(record).encode("utf-8")
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from e


def _record(job_id: str, pid: int) -> dict:
    return {"pid": pid, "pid_start": procs.start_ticks(pid), "job": job_id, "acquired": now_iso()}


def holder(project: Project, name: str) -> dict | None:
    """The live holder of lock `name` (its record), or None when nobody holds it."""
    path = lock_path(project, name)
    with _guard(path, create=False):
        info = read_lock(path)
        if info is None or not _is_locked(path):
            return None
        return info


def busy_message(project: Project, name: str, info: dict) -> str:
    return (f"project {project.name!r} is busy: {name} lock held by job {info.get('job')} "
            f"(pid {info.get('pid')}); wait for it or cancel it with `facepair job cancel {info.get('job')}`")


def acquire(project: Project, name: str, job_id: str, pid: int | None = None) -> bool:
    """Take lock `name` for `job_id` (named as held by process `pid`, default this one) until
    `release` or this process's end. Returns True when the file named another job that no longer
    holds it (a job killed before it could release: the kernel dropped its flock).

    A lock this process already holds for the same `job_id` (handed down by the job's starter) is
    kept and renamed to `pid`. Raises LockHeld naming the holder when anyone else holds it.
    """
    path = lock_path(project, name)
    pid = pid or os.getpid()
    with _guard(path):
        mine = _held.get(_key(path))
        if mine is not None:
            fd, held_for = mine
            if held_for != job_id:
                raise LockHeld(busy_message(project, name, read_lock(path) or {"job": held_for}))
            _write(fd, path, _record(job_id, pid))
            return False
        existed = path.exists()
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        holder_info = _flock_unless_live_holder(fd)
        if holder_info is not None:
            os.close(fd)
            raise LockHeld(busy_message(project, name, holder_info))
        try:
            previous = _parse(os.pread(fd, 4096, 0))
            _write(fd, path, _record(job_id, pid))
        except BaseException:  # e.g. a full disk: leave no lock file behind
            path.unlink(missing_ok=True)
            os.close(fd)
            raise
        with _held_mutex:
            _held[_key(path)] = (fd, job_id)
        return existed and previous.get("job") != job_id


def release(project: Project, name: str, job_id: str) -> None:
    """Give up lock `name` when this process holds it for `job_id`: the file goes, then the flock."""
    path = lock_path(project, name)
    with _guard(path):
        mine = _held.get(_key(path))
        if mine is None or mine[1] != job_id:
            return
        if (read_lock(path) or {}).get("job") == job_id:
            path.unlink(missing_ok=True)
        _forget(path, unlock=True)


def _forget(path: Path, unlock: bool) -> None:
    """Drop this process's hold on `path`. With `unlock` the flock goes for every process sharing
    the open file (a runner that inherited it too); without, only this process's descriptor closes."""
    with _held_mutex:
        fd, _ = _held.pop(_key(path))
    try:
        if unlock:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# ---- handing a lock to a job's process ------------------------------------------------------

def inherited_env(job_id: str) -> tuple[dict[str, str], list[int]]:
    """What a child needs to inherit the locks this process holds for `job_id`: the environment
    entry naming them and the fds to pass (subprocess's `pass_fds`)."""
    mine = [(fd, path) for path, (fd, held_for) in list(_held.items()) if held_for == job_id]
    if not mine:
        return {}, []
    return {INHERIT_ENV: ";".join(f"{fd}:{path}" for fd, path in mine)}, [fd for fd, _ in mine]


def adopt_inherited(job_id: str, environ=os.environ) -> list[str]:
    """In a job's process: take over the lock files its starter passed down for `job_id` (checked:
    the fd must still be that file). Removes the entry, and the fd is made non-inheritable again, so
    the job's own children (ffmpeg, a worker pool's fork server) never hold the flock past its end."""
    adopted = []
    for item in filter(None, environ.pop(INHERIT_ENV, "").split(";")):
        fd_text, _, path = item.partition(":")
        try:
            fd = int(fd_text)
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except (ValueError, OSError):
            continue
        if same:
            os.set_inheritable(fd, False)
            with _held_mutex:
                _held[_key(path)] = (fd, job_id)
            adopted.append(path)
    return adopted


def hand_over(project: Project, name: str, job_id: str, pid: int) -> None:
    """After starting the job's process `pid` with the lock passed down (`inherited_env`): name it
    as the holder and close this process's copy (the flock stays, held by the child's). The record
    is left alone when it no longer names `job_id` (the runner finished and released it already)."""
    path = lock_path(project, name)
    with _guard(path):
        mine = _held.get(_key(path))
        if mine is None or mine[1] != job_id:
            return
        try:
            info = read_lock(path)
            if info is not None and info.get("job") == job_id:
                _write(mine[0], path, {**info, "pid": pid, "pid_start": procs.start_ticks(pid)})
        finally:
            _forget(path, unlock=False)
