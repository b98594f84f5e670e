"""A source beside its alignments store: what the store says it describes, and the source's state.

`core.media.fingerprint` measures a file and compares two fingerprints; this module brings the
store in (its meta.json's `source.fingerprint`, the `partial.json` / `complete.json` markers) for
extract, convert, `facepair show` and the TUI.
"""

from __future__ import annotations

import os

from core.faces import alignments as store
from core.media.fingerprint import COMPLETE, PARTIAL, STATES, Check, compare, fingerprint, recorded_for
from core.system.atomic import read_json


def store_record(project, source) -> dict | None:
    """What the source's alignments store says it describes: its own fingerprint, else (a store
    written before fingerprints) what project.toml recorded; None when there is no store."""
    path = store.store_path(project, source.id)
    try:
        meta = store.read_meta(path)
    except store.AlignmentsError:
        return None
    fp = (meta.get("source") or {}).get("fingerprint")
    return dict(fp) if isinstance(fp, dict) else recorded_for(source)


def check_store(project, source, current: dict | None = None, path: str | os.PathLike | None = None) -> Check:
    """Does the file at `path` (default: the source's own) hold what the source's store describes?"""
    recorded = store_record(project, source)
    if recorded is None:
        return Check("unknown", "not extracted")
    if current is None:
        current = fingerprint(path or source.path, source.kind)
    return compare(recorded, current)


def source_state(project, source) -> dict:
    """{"state": one of STATES, "detail": words} for `facepair show` and the TUI."""
    current = fingerprint(source.path, source.kind)
    spath = store.store_path(project, source.id)
    if current is None:
        return {"state": "missing", "detail": f"{source.path}: no such file or folder"}
    if not store.store_exists(project, source.id):
        return {"state": "not extracted", "detail": STATES["not extracted"]}
    check = compare(store_record(project, source), current)
    if check.changed:
        return {"state": "changed", "detail": f"changed since it was extracted ({check.why}): run "
                                              f"`facepair extract {project.name}` to extract it again"}
    if source.kind == "video":
        if (spath / PARTIAL).is_file():
            try:
                p = read_json(spath / PARTIAL)
                detail = (f"only {p.get('decoded')} of {p.get('expected')} frames could be decoded "
                          f"(truncated or damaged file)")
            except (OSError, ValueError):
                detail = STATES["partial"]
            return {"state": "partial", "detail": detail}
        if not (spath / COMPLETE).is_file():
            return {"state": "incomplete", "detail": f"{STATES['incomplete']}: run `facepair extract {project.name}`"}
    return {"state": "extracted", "detail": STATES["extracted"]}
