"""Is a process still the one we started? (pid liveness that sees zombies and pid reuse.)"""

from __future__ import annotations

import os


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses: split after the last ')'.
    rest = stat[stat.rfind(")") + 2:].split()
    try:
        return int(rest[19])  # field 22 overall
    except (IndexError, ValueError):
        return None


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[0]


def is_alive(pid: int | None, expected_start: int | None = None) -> bool:
    """True while `pid` runs (not a zombie) and, when known, started at `expected_start`."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state = _state(pid)
    if state in ("Z", "X"):
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
    """Live (non-zombie) processes whose process group is `pgid` (Linux /proc)."""
    out = []
    try:
        names = os.listdir("/proc")
    except OSError:  # pragma: no cover - not Linux
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        try:
            if rest[0] not in ("Z", "X") and int(rest[2]) == pgid:
                out.append(int(name))
        except (IndexError, ValueError):
            continue
    return out
