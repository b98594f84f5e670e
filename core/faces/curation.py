"""Curating a side's face set: list its faces with their scores, sorted and filtered; remove faces
(into the side's trash, never deleted) and restore them.

A removal is recorded three ways, so every stage agrees on it:
- the crop moves to `faces/SIDE/.trash/` (core.faces.trash): training, fitting and the thumbnails
  read `faces/SIDE/*.png` only;
- the alignments store records status 4 "removed" for that detection (`curation.json` in the
  store, core.faces.alignments): `load_faceset` skips it even if its crop comes back by hand, and
  `convert --faces match` does not swap it (that detection is not the person);
- the trash's `batches.json` logs the batch, so the last batch can be undone.
Restoring moves the crop back and records status 0 "kept". A training job that is running keeps
the faces it loaded: at its next checkpoint it says how many were removed, and a resume leaves them
out. Refusing nothing while jobs run is deliberate: an extraction appends store parts, curation
writes only `curation.json`, and neither touches the other's files.

API (what the CLI and the faces screen call):
- `SORT_KEYS` (key → what it sorts by), `WHERE_KEYS`, `parse_where(text) -> Where`;
- `face_table(project, side) -> ScoreTable` (columns, for a screen that sorts and pages itself),
  `select(table, where=None, removed=False) -> rows`;
- `list_faces(project, side, sort=, descending=, where=, removed=, limit=) -> list[FaceRecord]`;
- `remove_faces(project, side, names) -> Removal`, `restore_faces(project, side, names=None,
  last=False, everything=False) -> Restoral`, `side_counts(project, side)`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from core.errors import FacepairError
from core.faces import alignments as store
from core.faces import trash
from core.faces.scores import ScoreTable, side_scores
from core.project.projects import validate_side

SORT_KEYS = {
    "order": "source order: sources as listed, then frame and face (the default)",
    "blur": "sharpness, variance of the Laplacian (ascending: blurriest first)",
    "yaw": "head turn left/right in degrees (> 0: the nose points to the image's right)",
    "pitch": "head tilt up/down in degrees (> 0: the nose points up)",
    "roll": "head tilt in the image plane in degrees (> 0: clockwise on screen)",
    "pose": "degrees away from frontal (yaw and pitch together)",
    "identity": "descriptor distance to the side's person (--desc: other people first)",
    "size": "face size in source-frame pixels",
    "align": "landmark fit residual of the alignment (--desc: worst fits first)",
    "change": "change from the previous face of the track (ascending: near-duplicates first)",
}
NUMERIC_KEYS = (*SORT_KEYS, "frame", "face", "track")
WHERE_KEYS = (*NUMERIC_KEYS, "source")
_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
        "=": np.equal, "==": np.equal, "!=": np.not_equal}
_CLAUSE = re.compile(r"^(?P<abs>\|?)(?P<key>[A-Za-z_]+)(?P=abs)\s*(?P<op><=|>=|!=|==|=|<|>)\s*(?P<value>\S.*)$")
_SPLIT = re.compile(r"\s*,\s*|\s+and\s+", re.IGNORECASE)


class CurationError(FacepairError):
    """A curation request that cannot be done as asked (bad filter, unknown faces)."""


# ---- filters ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Clause:
    key: str
    op: str
    value: float | str
    absolute: bool = False

    def __str__(self) -> str:
        key = f"|{self.key}|" if self.absolute else self.key
        value = self.value if isinstance(self.value, str) else f"{self.value:g}"
        return f"{key}{self.op}{value}"


@dataclass(frozen=True)
class Where:
    """Conditions that must all hold (a face with no value for a key never meets its condition)."""

    clauses: tuple[Clause, ...] = ()

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.clauses)

    def mask(self, table: ScoreTable) -> np.ndarray:
        ok = np.ones(len(table), bool)
        for c in self.clauses:
            col = table.columns[c.key]
            if c.key == "source":
                ok &= (col == c.value) if c.op in ("=", "==") else (col != c.value)
                continue
            v = np.abs(col.astype(np.float64)) if c.absolute else col.astype(np.float64)
            ok &= np.isfinite(v) & _OPS[c.op](v, float(c.value))
        return ok


def parse_where(text: str | None) -> Where:
    """A filter such as "blur<30", "|yaw|>40, identity>0.55" or "source=ID and frame>=100": clauses
    KEY OP VALUE (OP one of < <= > >= = != ; |KEY| for the absolute value) joined by "," or "and".
    Parsed, never evaluated; CurationError that names the bad part."""
    if text is None or not text.strip():
        return Where()
    clauses = []
    for part in _SPLIT.split(text.strip()):
        if not part:
            raise CurationError(f"--where {text!r} has an empty condition: join conditions with ',' or 'and'")
        clauses.append(_clause(part))
    return Where(tuple(clauses))


def _clause(part: str) -> Clause:
    m = _CLAUSE.match(part.strip())
    if not m:
        raise CurationError(f"{part!r} is not a condition: write KEY OP VALUE with OP one of < <= > >= = != "
                            f"(e.g. blur<30, |yaw|>40, source=ID)")
    key, op, value, absolute = m["key"].lower(), m["op"], m["value"].strip(), bool(m["abs"])
    if key not in WHERE_KEYS:
        raise CurationError(f"unknown key {m['key']!r} in {part!r}: use one of {', '.join(WHERE_KEYS)}")
    if key == "source":
        if op not in ("=", "==", "!=") or absolute:
            raise CurationError(f"{part!r}: source is a source id; compare it with = or != (e.g. source=ID)")
        return Clause(key, op, value)
    try:
        number = float(value)
    except ValueError:
        raise CurationError(f"{part!r}: {value!r} is not a number (e.g. {key}{op}30)") from None
    if not math.isfinite(number):
        raise CurationError(f"{part!r}: compare with a finite number")
    return Clause(key, op, number, absolute)


# ---- listing ---------------------------------------------------------------------------------------

@dataclass
class FaceRecord:
    """One face of a side: its crop, where it comes from, its scores, whether it is in the trash."""

    name: str
    path: str
    source: str
    frame: int
    face: int
    track: int
    removed: bool
    scores: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "source": self.source, "frame": self.frame,
                "face": self.face, "track": self.track, "removed": self.removed, "scores": dict(self.scores)}


def face_table(project, side: str) -> ScoreTable:
    """Every face of the side with a crop (kept or in the trash) and its scores, with the `pose`
    column added; cached scores make this quick (core.faces.scores)."""
    table = side_scores(project, validate_side(side))
    c = table.columns
    with np.errstate(invalid="ignore"):
        cos = np.cos(np.radians(c["yaw"].astype(np.float64))) * np.cos(np.radians(c["pitch"].astype(np.float64)))
        c["pose"] = np.degrees(np.arccos(np.clip(cos, -1, 1))).astype(np.float32)
    return table


def select(table: ScoreTable, where: Where | str | None = None, removed: bool | None = False) -> np.ndarray:
    """Row numbers of the faces that meet `where`: kept ones (removed=False), those in the trash
    (True) or both (None)."""
    w = where if isinstance(where, Where) else parse_where(where)
    ok = w.mask(table)
    if removed is not None:
        ok &= table.columns["removed"] == bool(removed)
    return np.flatnonzero(ok)


def check_sort(sort: str) -> str:
    if sort not in SORT_KEYS:
        raise CurationError(f"unknown sort key {sort!r}: use one of {', '.join(SORT_KEYS)}")
    return sort


def records(project, table: ScoreTable, rows: np.ndarray) -> list[FaceRecord]:
    """FaceRecords of some rows of a table (paths point where each crop is now)."""
    c, out = table.columns, []
    names = table.names
    keep_dir, trash_dir = project.faces_dir(table.side), trash.trash_dir(project, table.side)
    for r in np.asarray(rows, np.int64).tolist():
        removed = bool(c["removed"][r])
        scores = {k: _num(c[k][r]) for k in SORT_KEYS}
        out.append(FaceRecord(name=names[r], path=str((trash_dir if removed else keep_dir) / names[r]),
                              source=str(c["source"][r]), frame=int(c["frame"][r]), face=int(c["face"][r]),
                              track=int(c["track"][r]), removed=removed, scores=scores))
    return out


def _num(x) -> float | None:
    x = float(x)
    return round(x, 4) if math.isfinite(x) else None


def list_faces(project, side: str, sort: str = "order", descending: bool = False,
               where: Where | str | None = None, removed: bool | None = False,
               limit: int | None = None) -> list[FaceRecord]:
    """The side's faces (kept ones by default; `removed` as in `select`) that meet `where`, sorted by
    `sort` (a SORT_KEYS key; faces without that score last), at most `limit` of them."""
    check_sort(sort)
    table = face_table(project, side)
    rows = table.order_by(sort, descending, select(table, where, removed))
    if limit is not None:
        rows = rows[: max(0, int(limit))]
    return records(project, table, rows)


# ---- removing and restoring -----------------------------------------------------------------------

@dataclass
class Removal:
    """What `remove_faces` did: the batch id (None when nothing was removed), the faces moved to
    the trash, those that were there already, and the trash folder."""

    side: str
    batch: int | None
    removed: list[str]
    already: list[str]
    trash: str

    def as_dict(self) -> dict:
        return {"side": self.side, "batch": self.batch, "removed": self.removed, "already_removed": self.already,
                "trash": self.trash}


@dataclass
class Restoral:
    """What `restore_faces` did: the faces back in faces/SIDE and those left where they were, with why."""

    side: str
    restored: list[str]
    skipped: dict[str, str]

    def as_dict(self) -> dict:
        return {"side": self.side, "restored": self.restored, "skipped": self.skipped}


def crop_names(names: list[str]) -> list[str]:
    """Crop names as given on a command line ('SRC_000012_00' or a path to the .png), checked."""
    out = []
    for n in names:
        name = n.strip().rsplit("/", 1)[-1]
        name = name if name.endswith(".png") else f"{name}.png"
        if store.parse_crop_name(name) is None:
            raise CurationError(f"{n!r} is not a face name: names look like SOURCEID_FRAME_FACE "
                                f"(e.g. clip-1a2b3c_000012_00; `facepair faces NAME SIDE` lists them)")
        out.append(name)
    return list(dict.fromkeys(out))


def _rows_of(table: ScoreTable, names: list[str], project, side: str) -> dict[str, int]:
    """Row of each name in the table; CurationError naming those that are no face of the side."""
    index = {n: i for i, n in enumerate(table.names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise CurationError(f"{', '.join(unknown[:3])}{more}: no face of side {side} of {project.name!r} by that name "
                            f"(`facepair faces {project.name} {side}` lists them; --trash lists removed ones)")
    return {n: index[n] for n in names}


def _record_status(project, table: ScoreTable, rows: list[int], code: int) -> None:
    """Status `code` for these faces in their sources' stores (curation.json), one write per source."""
    c = table.columns
    by_source: dict[str, dict[tuple[int, int], int]] = {}
    for r in rows:
        by_source.setdefault(str(c["source"][r]), {})[(int(c["frame"][r]), int(c["face"][r]))] = code
    for sid, changes in by_source.items():
        store.write_curation(store.store_path(project, sid), changes)


def remove_faces(project, side: str, names: list[str], table: ScoreTable | None = None) -> Removal:
    """Move these faces of `side` to its trash and record them as removed (module notes); one undo
    batch. Faces already removed are reported, not an error; a name that is no face of the side
    refuses the whole request. `table`: a face_table the caller already has."""
    side = validate_side(side)
    names = crop_names(names)
    table = table if table is not None else face_table(project, side)
    rows = _rows_of(table, names, project, side)
    fresh = [n for n in names if not table.columns["removed"][rows[n]]
             or (project.faces_dir(side) / n).is_file()]
    already = [n for n in names if n not in set(fresh)]
    bid = None
    if fresh:
        _record_status(project, table, [rows[n] for n in fresh], store.STATUS_CODE["removed"])
        trash.move(fresh, project.faces_dir(side), trash.trash_dir(project, side))
        bid = trash.record_batch(project, side, fresh)
        table.columns["removed"][[rows[n] for n in fresh]] = True
    return Removal(side, bid, fresh, already, str(trash.trash_dir(project, side)))


def restore_faces(project, side: str, names: list[str] | None = None, last: bool = False,
                  everything: bool = False, table: ScoreTable | None = None) -> Restoral:
    """Bring removed faces back to faces/SIDE and record them as kept: these `names`, the last
    removal batch (`last`, the default when nothing is named) or the whole trash (`everything`).
    A crop whose store no longer knows its face (re-extracted since) stays in the trash."""
    side = validate_side(side)
    if sum(bool(x) for x in (names, last, everything)) > 1:
        raise CurationError("restore either named faces, the last batch or everything (--ids, --last or --all)")
    table = table if table is not None else face_table(project, side)
    index = {n: i for i, n in enumerate(table.names)}
    removed = {n for n, i in index.items() if table.columns["removed"][i]}
    if names:
        wanted = crop_names(names)
    elif everything:
        wanted = sorted(set(trash.trash_names(project, side)) | removed)
    else:
        batch = trash.last_batch(project, side)
        wanted = batch["names"] if batch else []
    skipped: dict[str, str] = {}
    ok = []
    for n in wanted:
        if n not in index:
            skipped[n] = "no face of the side by that name in its alignments store (re-extracted since?)"
        elif n not in removed and (project.faces_dir(side) / n).is_file():
            skipped[n] = "not removed"
        elif trash.crop_file(project, side, n) is None:
            skipped[n] = "its crop is in neither the trash nor faces/" + side + " (deleted by hand?)"
        else:
            ok.append(n)
    if ok:
        trash.move(ok, trash.trash_dir(project, side), project.faces_dir(side))
        _record_status(project, table, [index[n] for n in ok], store.STATUS_CODE["kept"])
        trash.forget(project, side, ok)
        table.columns["removed"][[index[n] for n in ok]] = False
    return Restoral(side, ok, skipped)


def side_counts(project, side: str) -> dict[str, int]:
    """{"faces": crops in faces/SIDE (after removals), "trash": crops in its trash}: two folder
    listings, no scores."""
    return {"faces": project.face_count(side), "trash": len(trash.trash_names(project, side))}
