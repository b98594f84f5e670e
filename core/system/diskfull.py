"""A full disk, wherever it shows up, said in one line.

A write that finds no space fails as `OSError` ENOSPC (or EDQUOT, over a quota) from Python, but
libraries wrap it: orbax/tensorstore checkpoints raise `ValueError: RESOURCE_EXHAUSTED: … No space
left on device`. `is_disk_full(exc)` recognises every form (the exception, its cause and context);
`describe(exc, fallback)` says where (the file, the filesystem and what is free there) for the CLI,
the TUI and a job's reason:

    disk full: no space left on /data (0 B free) writing /data/home/duo/project.toml; ...

Every command that fails this way leaves what was there before as it was: project.toml and job
files are written atomically (the old file stays), `add-source` undoes its copies, `new` removes the
half-made project and a job folder whose job.json could not be written is removed.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

ERRNOS = {errno.ENOSPC, errno.EDQUOT}
PATTERNS = ("No space left on device", "Disk quota exceeded")
NOTHING_LOST = "nothing was lost (files written before are as they were); free some space and try again"
JOB_STOPPED = "the job stopped; what it saved before is kept; free some space and run it again"


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen and len(seen) < 16:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is a write that found no space."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in ERRNOS:
            return True
        if any(p in str(e) for p in PATTERNS):
            return True
    return False


def _path_of(exc: BaseException) -> str | None:
    """The file being written, when the error says: an OSError's destination, else a quoted
    absolute path in the message (tensorstore's form)."""
    for e in _chain(exc):
        if isinstance(e, OSError) and (e.filename2 or e.filename):
            return os.fsdecode(e.filename2 or e.filename)
    for e in _chain(exc):
        m = re.search(r"""["'](/[^"']+)["']""", str(e))
        if m:
            return m.group(1)
    return None


def mount_of(path: str | os.PathLike) -> Path:
    """The mount point of the filesystem holding `path` (or its nearest existing parent)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def describe(exc: BaseException, fallback: str | os.PathLike | None = None, outcome: str = NOTHING_LOST) -> str:
    """One line: `disk full: no space left on MOUNT (FREE free) writing PATH; OUTCOME`."""
    path = _path_of(exc) or (str(fallback) if fallback else None)
    if path is None:
        return f"disk full: no space left on the device; {outcome}"
    mount = mount_of(path)
    try:
        free = f" ({_size(shutil.disk_usage(mount).free)} free)"
    except OSError:
        free = ""
    writing = f" writing {path}" if _path_of(exc) else ""  # a bare write() error names no file
    return f"disk full: no space left on {mount}{free}{writing}; {outcome}"
