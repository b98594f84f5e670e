"""A side's trash: where removed crops wait, and the log of removal batches that undo reads.

The trash of side S is `PROJECT/faces/S/.trash/`: a hidden folder inside the side's faces, so
everything that reads `faces/S/*.png` (training, fitting, the thumbnails) leaves it out without
being told, it moves with the project, and deleting the faces folder (`extract --fresh`, the demo)
empties it too. A crop keeps its name in the trash. `batches.json` there lists the removal
batches, oldest first: `{"batches": [{"id": N, "time": ISO, "names": [crop names]}]}`; restoring
"the last batch" (`u` in the faces screen) takes the newest one whose faces are still in the trash.
Moving files is all this module does; core.faces.curation records the decisions in the store.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.system.atomic import atomic_write_json, read_json
from core.system.clock import now_iso

TRASH = ".trash"
LOG = "batches.json"


def trash_dir(project, side: str) -> Path:
    return project.faces_dir(side) / TRASH


def crop_file(project, side: str, name: str) -> Path | None:
    """Where a crop is now: faces/SIDE, its trash, or None."""
    for d in (project.faces_dir(side), trash_dir(project, side)):
        p = d / name
        if p.is_file():
            return p
    return None


def trash_names(project, side: str) -> list[str]:
    """The crops in the side's trash, sorted."""
    d = trash_dir(project, side)
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.suffix == ".png" and not p.name.startswith("."))


def move(names: list[str], src: Path, dst: Path) -> list[str]:
    """Move crops by name from one folder to the other (a rename: same file system); returns those
    moved (a name missing in `src` is skipped)."""
    dst.mkdir(parents=True, exist_ok=True)
    moved = []
    for n in names:
        try:
            os.replace(src / n, dst / n)
        except FileNotFoundError:
            continue
        moved.append(n)
    return moved


def batches(project, side: str) -> list[dict]:
    """The removal batches, oldest first ([] when none or when the log is unreadable)."""
    try:
        data = read_json(trash_dir(project, side) / LOG)
    except (OSError, ValueError):
        return []
    out = data.get("batches") if isinstance(data, dict) else None
    return [b for b in out or [] if isinstance(b, dict) and isinstance(b.get("names"), list)]


def _save(project, side: str, items: list[dict]) -> None:
    trash_dir(project, side).mkdir(parents=True, exist_ok=True)
    atomic_write_json(trash_dir(project, side) / LOG, {"batches": items})


def record_batch(project, side: str, names: list[str]) -> int:
    """Log one removal batch; returns its id."""
    items = batches(project, side)
    bid = max((int(b.get("id", 0)) for b in items), default=0) + 1
    _save(project, side, [*items, {"id": bid, "time": now_iso(), "names": sorted(names)}])
    return bid


def forget(project, side: str, names: list[str]) -> None:
    """Take restored crops out of the log (a batch left empty goes)."""
    gone = set(names)
    items = [{**b, "names": [n for n in b["names"] if n not in gone]} for b in batches(project, side)]
    _save(project, side, [b for b in items if b["names"]])


def last_batch(project, side: str) -> dict | None:
    """The newest batch with faces still in the trash (only those names), or None."""
    present = set(trash_names(project, side))
    for b in reversed(batches(project, side)):
        names = [n for n in b["names"] if n in present]
        if names:
            return {**b, "names": names}
    return None
