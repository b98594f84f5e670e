"""Is a process still the one we started? (pid liveness that sees zombies and pid reuse, via psutil.)"""

from __future__ import annotations

import os

import psutil

_DEAD = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 100


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when unknown.

    psutil gives the start as seconds since the epoch (ticks / CLK_TCK + the boot time); the boot
    time is taken off again so the value stays the kernel's own count: a whole number that never
    changes with the wall clock, comparable with what an earlier facepair recorded in job.json."""
    try:
        boot = psutil.boot_time()  # first: psutil 5 caches it for create_time below
        created = psutil.Process(pid).create_time()
    except (psutil.Error, ValueError, OSError):
        return None
    return round((created - boot) * _clock_ticks())


def _status(pid: int) -> str | None:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return None
    except (psutil.Error, OSError):
        return "unknown"  # it exists, we may not look: count it as running


def is_alive(pid: int | None, expected_start: int | None = None) -> bool:
    """True while `pid` runs (not a zombie) and, when known, started at `expected_start`."""
    if not pid or pid <= 0:
        return False
    status = _status(pid)
    if status is None or status in _DEAD:
        return False
    if expected_start is not None:
        now = start_ticks(pid)
        if now is not None and now != expected_start:
            return False
    return True


# ---- dying with the parent -------------------------------------------------------------------

PR_SET_PDEATHSIG = 1
_libc = None


def set_parent_death_signal(sig: int = 9) -> bool:
    """Ask Linux to send `sig` (default SIGKILL) to this process when its parent exits.

    Linux only (prctl through ctypes; no-op elsewhere). The signal comes when the *thread* that
    forked this process ends, so call it in processes forked by a single-threaded parent (the
    multiprocessing fork server) or check `os.getppid()` afterwards. Returns True when set.
    """
    global _libc
    try:
        import ctypes

        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        return _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return False


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    out = []
    for p in psutil.process_iter(["status"]):
        try:
            if p.info["status"] not in _DEAD and os.getpgid(p.pid) == pgid:
                out.append(p.pid)
        except (ProcessLookupError, PermissionError, OSError):
            continue
    return out
