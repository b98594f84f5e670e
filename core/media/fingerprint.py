"""Has a source file changed since it was added or extracted? A cheap fingerprint and one comparison.

A fingerprint is a small dict: `size` (bytes), `mtime` (seconds), `hash` (sha1 of the size, the
first and the last MiB; for a folder, of its image files' names and sizes) and, for a video,
`frames` (the container's frame count). It never reads a whole video: ~2 MiB and one open.

`project.toml` records one per source when it is added (`Source.fingerprint`, `Source.frames`),
and the alignments store records the one of the file content it describes (meta.json,
`source.fingerprint`) when an extraction creates it.

`compare(recorded, current)` is the one decision every stage uses (extract, convert, `facepair
show`, the TUI): same or changed, and why in words. A record without a hash (a project or store
written before fingerprints existed) falls back to size and mtime.

`STATES` names what `show` and the TUI print for a source; `core.faces.sources.source_state`,
which reads the alignments store, decides which applies. This module reads files, never a store.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from core.media import types as mediatypes

EDGE = 1 << 20  # bytes hashed at each end of a file
MTIME_TOLERANCE = 1e-6
PARTIAL = "partial.json"  # in a video's store: the last extraction decoded fewer frames than the container has
COMPLETE = "complete.json"  # in a video's store: every frame was processed

STATES = {
    "not extracted": "no alignments yet",
    "extracted": "alignments describe the file as it is",
    "partial": "fewer frames decoded than the container has (truncated or damaged file)",
    "incomplete": "an extraction stopped before the end (it resumes)",
    "changed": "the file changed since it was extracted: its alignments and faces describe another file",
    "missing": "the file is gone",
}

_cache: dict[tuple, dict] = {}


@dataclass(frozen=True)
class Check:
    """The verdict of `compare`: `state` is 'same', 'changed', 'missing' or 'unknown'."""

    state: str
    why: str = ""

    @property
    def changed(self) -> bool:
        return self.state in ("changed", "missing")


def _hash_file(path: Path, size: int) -> str:
    h = hashlib.sha1(f"size:{size}".encode())
    with open(path, "rb") as f:
        h.update(f.read(EDGE))
        if size > EDGE:
            f.seek(max(EDGE, size - EDGE))
            h.update(f.read(EDGE))
    return h.hexdigest()


def _video_frames(path: Path) -> int | None:
    try:
        import cv2

        cap = cv2.VideoCapture(str(path))
        try:
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        finally:
            cap.release()
    except Exception:  # noqa: BLE001 - a fingerprint without a frame count still compares
        return None
    return n if n > 0 else None


def fingerprint(path: str | os.PathLike, kind: str | None = None) -> dict | None:
    """The fingerprint of a file or folder as it is now, or None when it is gone or unreadable.
    Cached per (path, size, mtime, inode): cheap to ask on every refresh."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return None
    kind = kind or mediatypes.classify(path)
    # A folder's key is its own stat (it changes when images are added, removed or renamed): a
    # long-lived viewer (the TUI) does not stat every image on every refresh.
    key = (str(path), kind, st.st_size, st.st_mtime_ns, st.st_ino)
    hit = _cache.get(key)
    if hit is not None:
        return dict(hit)
    try:
        if path.is_dir():
            stats = [(f.name, f.stat()) for f in mediatypes.images_in(path)]
            size = sum(s.st_size for _, s in stats)
            mtime = max((s.st_mtime for _, s in stats), default=st.st_mtime)
            h = hashlib.sha1("\n".join(f"{n}:{s.st_size}" for n, s in stats).encode()).hexdigest()
            fp = {"size": size, "mtime": mtime, "hash": h, "frames": len(stats)}
        else:
            fp = {"size": st.st_size, "mtime": st.st_mtime, "hash": _hash_file(path, st.st_size)}
            if kind == "video":
                fp["frames"] = _video_frames(path)
            elif kind == "image":
                fp["frames"] = 1
    except OSError:
        return None
    if len(_cache) > 512:
        _cache.clear()
    _cache[key] = fp
    return dict(fp)


def compare(recorded: dict | None, current: dict | None) -> Check:
    """Is `current` (a fingerprint, None when the file is gone) the file `recorded` describes?

    Pure. With a hash on both sides the content decides (size, hash, frame count; a new mtime
    alone is not a change). Without one (an older record) size and mtime decide. Nothing
    recorded: 'unknown'."""
    if current is None:
        return Check("missing", "the file is gone")
    if not recorded:
        return Check("unknown", "nothing recorded about it")
    why = []
    rs, cs = recorded.get("size"), current.get("size")
    if rs is not None and cs is not None and int(rs) != int(cs):
        why.append(f"size {int(rs):,} → {int(cs):,} bytes")
    if recorded.get("hash") and current.get("hash"):
        if recorded["hash"] != current["hash"] and not why:
            why.append("content differs")
        rf, cf = recorded.get("frames"), current.get("frames")
        if rf is not None and cf is not None and int(rf) != int(cf):
            why.append(f"frames {int(rf)} → {int(cf)}")
    else:
        rm, cm = recorded.get("mtime"), current.get("mtime")
        if rm is not None and cm is not None and abs(float(rm) - float(cm)) > MTIME_TOLERANCE:
            why.append("modified since")
    return Check("changed", ", ".join(why)) if why else Check("same")


def recorded_for(source) -> dict:
    """What project.toml recorded about a source when it was added."""
    return {"size": source.size, "mtime": source.mtime, "hash": getattr(source, "fingerprint", None),
            "frames": getattr(source, "frames", None)}
