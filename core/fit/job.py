"""The `fit` job: rank candidate footage by how well person B's face fits each person in it.

Flow: B's faces (the project's side-B extraction, else found in B's sources) → for each candidate
(a video, an image or a folder): sample frames, find faces with the extraction's face finder
(`core.extract.finder.find_faces`: tracking and smoothing in short clips of a video, every face of a
still), group them into people by dlib descriptor → per person a `core.fit.measures.Profile`, compared with
B's (`core.fit.measures.compare`) → a ranking, returned as the job's result and cached in `PROJECT/fit.json`
(atomic) for the project's side-A sources, which the TUI shows (`rank_project_sources`).

Sampling a video: `frames` frames (default 120) in clips of `CLIP` consecutive frames spread
evenly over the video, so tracking and landmark smoothing work inside a clip and the clips see
the whole video. The video is decoded once, up to the last sampled frame. A side-A source that
was extracted is read from the crops the extraction kept in faces/a instead (no detection), and
B from faces/b. Every face's landmarks are measured again on an upright crop of fixed size
(`measure`), so the shape numbers do not depend on the image's scale or the head's roll.

Rows (plain dicts, JSON-ready; `ROW_KEYS`): `candidate` (absolute path), `name`, `kind`,
`person` (1, 2, … within the candidate; None when no face), `faces`, `frames` ([first, last]),
`score` (0–100 or None), `distance`, `differences` (the 1–3 largest, each `{feature, percent, z,
words}`),
`coverage` (0–1: share of the candidate's poses covered by B's faces), `yaw`/`pitch` ([5th, 95th]
percentile, degrees), `status` ("ok", "no face found", "unreadable"), `message`, `notes`, `rank`.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import FacepairError
from core.fit import measures as fit
from core.fit import options
from core.system.atomic import atomic_write_json, read_json

CACHE_FILE = "fit.json"
CACHE_VERSION = 1
FRAMES = options.FRAMES_DEFAULT       # frames sampled from a video (or images from a folder)
MAX_FRAMES = options.MAX_FRAMES     # bounds memory: people are grouped with (faces × faces) matrices
CLIP = 6              # consecutive frames per sampled clip of a video
MAX_FACES = 1000      # crops read for an extracted side-A source (evenly spaced)
MAX_B_FACES = 500     # crops read for B (evenly spaced)
MAX_PEOPLE = 4        # people scored per candidate (those with the most faces)
MIN_PERSON_SHARE = 0.05  # people with fewer faces than this share of the candidate's are "extras"
MEASURE_SIZE = 256    # px of the upright crop the landmarks are measured on
MIN_CONFIDENCE = 0.3  # a track's best upright re-score (detect.face_score) below this is dropped

NO_FACE = "no face found"
UNREADABLE = "unreadable"
ROW_KEYS = ("rank", "candidate", "name", "kind", "person", "faces", "frames", "score", "distance",
            "differences", "coverage", "yaw", "pitch", "status", "message", "notes")


class FitError(FacepairError):
    """B has no faces to compare with, or a candidate list is unusable."""


@dataclass
class Faces:
    """Faces found in one candidate (or in B's sources): per-face arrays."""

    landmarks: np.ndarray    # (N, 68, 2) float32 frame pixels
    frames: np.ndarray       # (N,) int64 frame (or image) index
    tracks: np.ndarray       # (N,) int64 track id (faces of one person in consecutive frames)
    descriptors: np.ndarray  # (N, 128) float32, NaN where none was computed

    @classmethod
    def empty(cls) -> Faces:
        return cls(np.zeros((0, 68, 2), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros((0, 128), np.float32))

    def __len__(self) -> int:
        return len(self.frames)

    def select(self, rows) -> Faces:
        return Faces(self.landmarks[rows], self.frames[rows], self.tracks[rows], self.descriptors[rows])

    @classmethod
    def concat(cls, parts: list[Faces]) -> Faces:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.landmarks for p in parts]), np.concatenate([p.frames for p in parts]),
                   np.concatenate([p.tracks for p in parts]), np.concatenate([p.descriptors for p in parts]))


# ---- sampling and finding faces ----------------------------------------------------------------

def clip_starts(total: int, frames: int = FRAMES, clip: int = CLIP) -> list[int]:
    """First frames of the clips sampled from a video of `total` frames (evenly spread, in order)."""
    total, frames, clip = int(total), max(1, int(frames)), max(1, int(clip))
    if total <= 0:
        return []
    if total <= frames:
        return list(range(0, total, clip))
    n = max(1, math.ceil(frames / clip))
    if n == 1:
        return [max(0, (total - clip) // 2)]
    last = max(0, total - clip)
    return sorted({round(i * last / (n - 1)) for i in range(n)})


def measure(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face's 68 landmarks measured again on an upright crop of standard size.

    dlib's predictor is less exact on rolled faces and its errors depend on the face's size in
    pixels; re-running it on the face warped upright to `MEASURE_SIZE` px (the extraction's crop:
    `core.faces.align.crop_matrix`) makes the shape measurements the same whatever the image's scale
    and the head's roll. Returns landmarks in that crop's pixels (a similarity of the frame's,
    which is all the shape and pose maths needs).
    """
    from core.faces import align, detect

    m = align.crop_matrix(landmarks, MEASURE_SIZE)
    crop = np.ascontiguousarray(align.warp_to_crop(image, m, MEASURE_SIZE))
    box = detect.box_from_landmarks(align.crop_landmarks(landmarks, m))
    return detect.landmarks(crop, box)


def _find(frames, video: bool, detector: str) -> Faces:
    """Faces in `frames` (consecutive frames of one clip, or stills) by the extraction's finder.

    Tracks whose best face re-scores below `MIN_CONFIDENCE` (`detect.face_score`: the HOG score
    of the face warped upright) are dropped: at that level they are mostly false detections
    (a badge, a helmet), which would otherwise be scored as people.
    """
    from core.extract import finder as extract

    opts = extract.FindOptions(detector=detector, video=video, descriptors=True,
                               detect_every=max(CLIP, extract.DETECT_EVERY))
    lms, idx, tracks, descs, conf = [], [], [], [], []
    for fr, faces in extract.find_faces(frames, opts, workers=1):
        for f in faces:
            lms.append(measure(fr.image, f.landmarks))
            idx.append(fr.index)
            tracks.append(f.track)
            conf.append(f.confidence)
            d = f.track_descriptor if f.track_descriptor is not None else f.descriptor
            descs.append(np.full(128, np.nan, np.float32) if d is None else np.asarray(d, np.float32))
    if not lms:
        return Faces.empty()
    found = Faces(np.stack(lms), np.asarray(idx, np.int64), np.asarray(tracks, np.int64),
                  np.stack(descs).astype(np.float32))
    conf = np.asarray(conf, np.float64)
    best = {t: conf[found.tracks == t].max() for t in np.unique(found.tracks)}
    return found.select(np.array([best[t] >= MIN_CONFIDENCE for t in found.tracks], dtype=bool))


def find_in_media(path: str | os.PathLike, frames: int = FRAMES, detector: str = "hog",
                  progress=None, cancelled=None) -> tuple[Faces, int, list[str]]:
    """Faces in a video, an image or a folder, sampled (see the module notes).

    Returns (faces, frames examined, notes). `progress(done, total)` is called as frames are
    examined; `cancelled()` is checked between clips. MediaError for an unreadable source.
    """
    from core.media.probe import probe

    path = Path(path)
    info = probe(path)
    if info.kind == "video":
        return _find_in_video(path, info.frames or 0, frames, detector, progress, cancelled)
    return _find_in_stills(path, info.frames or 1, frames, detector, progress, cancelled)


def sampled_clips(total: int, frames: int) -> dict[int, int]:
    """Frame index → clip number for the frames a video is sampled at (short clips spread over it;
    `total` 0 when the container does not say)."""
    starts = clip_starts(total, frames) if total else list(range(0, frames * 30, 30))
    wanted: dict[int, int] = {}
    for c, s in enumerate(starts):
        for f in range(s, min(s + CLIP, total) if total else s + CLIP):
            wanted.setdefault(f, c)
    return wanted


class _ClipFaces:
    """Faces found clip by clip, their track numbers kept apart across clips."""

    def __init__(self, detector: str):
        self.detector, self.parts, self.clip, self.track_base = detector, [], [], 0

    def flush(self) -> None:
        if self.clip:
            found = _find(self.clip, True, self.detector)
            found.tracks = found.tracks + self.track_base
            self.track_base = int(found.tracks.max()) + 1 if len(found) else self.track_base
            self.parts.append(found)
        self.clip = []


def _find_in_video(path: Path, total: int, frames: int, detector: str, progress, cancelled):
    from core.media import read as media

    wanted = sampled_clips(total, frames)
    stop = max(wanted) + 1 if wanted else 0
    clips, notes, current, done = _ClipFaces(detector), [], None, 0
    try:
        for fr in media.iter_frames(path, stop=stop):
            c = wanted.get(fr.index)
            if c is None:
                continue
            if c != current:
                clips.flush()
                current = c
                if cancelled is not None and cancelled():
                    break
            clips.clip.append(fr)
            done += 1
            if progress is not None:
                progress(done, len(wanted))
    except media.MediaError as e:
        if not done:
            raise
        notes.append(f"decoding stopped after {done} sampled frames: {e}")
    clips.flush()
    return Faces.concat(clips.parts), done, notes


def _find_in_stills(path: Path, count: int, frames: int, detector: str, progress, cancelled):
    from core.media import read as media

    every = max(1, math.ceil(count / max(1, frames)))
    notes = [f"{math.ceil(count / every)} of {count} images sampled"] if every > 1 else []
    errors: list[str] = []
    seen = 0

    def stills():
        nonlocal seen
        for fr in media.iter_frames(path, every=every, on_error=lambda i, name, msg: errors.append(name)):
            seen += 1
            if progress is not None:
                progress(seen, math.ceil(count / every))
            if cancelled is not None and cancelled():
                return
            yield fr

    found = _find(stills(), False, detector)
    if errors:
        notes.append(f"{len(errors)} unreadable image{'s' * (len(errors) > 1)} skipped: {', '.join(errors[:3])}")
    return found, seen, notes


def _evenly(items: list, limit: int) -> list:
    if len(items) <= limit:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def faces_from_crops(project, side: str, source_id: str | None = None, limit: int = MAX_FACES) -> Faces:
    """Faces the extraction kept in `faces/SIDE` (of one source, or all), at most `limit` evenly
    spaced: landmarks measured on the crops (`measure`), tracks and descriptors from each source's
    alignments store. Crops without an alignment record are skipped (empty Faces when none)."""
    import cv2

    from core.faces import alignments
    from core.faces.align import crop_landmarks
    from core.faces.faceset import face_files

    chosen = []
    for p in face_files(project, side):
        parsed = alignments.parse_crop_name(p.name)
        if parsed and (source_id is None or parsed[0] == source_id):
            chosen.append((p, *parsed))
    chosen = _evenly(chosen, limit)
    stores: dict[str, alignments.Alignments | None] = {}
    track_of: dict[str, dict[int, np.ndarray]] = {}
    bases: dict[str, int] = {}
    lms, idx, tracks, descs = [], [], [], []
    for path, sid, frame, face in chosen:
        if sid not in stores:
            try:
                stores[sid] = a = alignments.load_for_source(project, sid)
            except alignments.AlignmentsError:
                stores[sid] = None
                continue
            # The store keeps one descriptor per track and segment: share it with the whole track.
            track_of[sid] = {}
            for r, d in zip(a.descriptor_face, a.descriptors, strict=True):
                track_of[sid].setdefault(int(a.faces["track"][r]), d)
            bases[sid] = 1_000_000 * len(bases)  # track ids are per source: keep them apart
        a = stores[sid]
        row = a.row(frame, face) if a is not None else None
        if row is None:
            continue
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        crop = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        lms.append(measure(crop, crop_landmarks(a.landmarks[row], a.matrix[row])))
        idx.append(frame)
        t = int(a.faces["track"][row])
        tracks.append(bases[sid] + t if t >= 0 else -1)
        d = track_of[sid].get(t)
        descs.append(np.full(128, np.nan, np.float32) if d is None else np.asarray(d, np.float32))
    if not lms:
        return Faces.empty()
    return Faces(np.stack(lms).astype(np.float32), np.asarray(idx, np.int64), np.asarray(tracks, np.int64),
                 np.stack(descs).astype(np.float32))


# ---- B ------------------------------------------------------------------------------------------

@dataclass
class BFaces:
    faces: Faces
    origin: str          # "extraction" or "sources"
    signature: str       # changes when B's faces change (cache key)
    notes: list[str]


def _b_signature(project) -> tuple[str, str]:
    from core.faces.faceset import face_files

    names = [p.name for p in face_files(project, "b")]
    if names:
        return "extraction", hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]
    src = [f"{s.path}:{s.size}:{s.mtime}" for s in project.sources_of("b")]
    return "sources", hashlib.sha1("\n".join(src).encode()).hexdigest()[:16]


def b_faces(project, frames: int = FRAMES, detector: str = "hog", progress=None, cancelled=None) -> BFaces:
    """B's faces: the crops kept in faces/b, else the main person found in B's sources (sampled
    like a candidate). FitError when B has none."""
    from core.media.read import MediaError

    origin, signature = _b_signature(project)
    notes: list[str] = []
    if origin == "extraction":
        faces = faces_from_crops(project, "b", limit=MAX_B_FACES)
        if len(faces):
            return BFaces(faces, origin, signature, notes)
        notes.append("faces/b holds no crop with an alignment record: finding B's faces in B's sources instead")
    sources = project.sources_of("b")
    if not sources:
        raise FitError(f"side B ({project.label_b}) of project {project.name!r} has no faces and no sources: "
                       f"add B's photos or videos with `facepair add-source {project.name} b PATH…`")
    parts, base = [], 0
    for s in sources:
        try:
            found, _, _ = find_in_media(s.path, frames, detector, progress, cancelled)
        except MediaError as e:
            notes.append(str(e))
            continue
        found.tracks = found.tracks + base
        base = int(found.tracks.max()) + 1 if len(found) else base
        parts.append(found)
    faces = Faces.concat(parts)
    if not len(faces):
        raise FitError(f"no face found in the sources of side B ({project.label_b}): add photos that show B's "
                       f"face clearly (at least 40 px), or try --detector cnn")
    labels = fit.group_people(faces.descriptors, faces.tracks)
    if labels.max() > 0:
        main = int((labels == 0).sum())
        notes.append(f"B's sources show {labels.max() + 1} people: using the one with the most faces ({main} of "
                     f"{len(faces)}); extract side B (`facepair extract {project.name} --side b`) to choose")
        faces = faces.select(labels == 0)
    notes.append(f"B's faces found in B's sources ({len(faces)}): run `facepair extract {project.name}` to use "
                 "the faces you keep in faces/b instead")
    return BFaces(faces, "sources", signature, notes)


# ---- scoring ------------------------------------------------------------------------------------

def score_people(b: fit.Profile, faces: Faces) -> list[dict]:
    """One row per person in `faces` (most faces first), with B's fit to that person."""
    if not len(faces):
        return []
    labels = fit.group_people(faces.descriptors, faces.tracks)
    people = int(labels.max()) + 1
    rows = []
    extras = 0
    for k in range(people):
        sel = labels == k
        n = int(sel.sum())
        if k >= MAX_PEOPLE or (k > 0 and n < MIN_PERSON_SHARE * len(faces)):
            extras += 1
            continue
        person = fit.profile(faces.landmarks[sel])
        cmp = fit.compare(b, person)
        fr = faces.frames[sel]
        rows.append({
            "person": k + 1, "faces": n, "frames": [int(fr.min()), int(fr.max())],
            "score": round(cmp.score, 1), "distance": round(cmp.distance, 3),
            "differences": [d.to_dict() for d in cmp.top(3)],
            "coverage": round(cmp.coverage, 3), **person.pose_range(),
            "status": "ok", "message": "", "notes": list(person.notes),
        })
    if extras and rows:
        rows[-1]["notes"].append(f"{extras} more {'person' if extras == 1 else 'people'} with few faces not scored")
    return rows


def _candidate_row(path: Path, kind: str, **fields) -> dict:
    row = {"candidate": str(path), "name": path.name, "kind": kind, "person": None, "faces": 0, "frames": None,
           "score": None, "distance": None, "differences": [], "coverage": None, "yaw": None, "pitch": None, "status": "ok",
           "message": "", "notes": [], "rank": None}
    row.update(fields)
    return row


def rank_rows(rows: list[dict]) -> list[dict]:
    """Scored rows by score (best first), then the rest; `rank` numbers the scored ones."""
    scored = sorted((r for r in rows if r.get("score") is not None), key=lambda r: -r["score"])
    rest = [r for r in rows if r.get("score") is None]
    for i, r in enumerate(scored, 1):
        r["rank"] = i
    for r in rest:
        r["rank"] = None
    return scored + rest


def score_candidate(b: fit.Profile, path: str | os.PathLike, faces: Faces, examined: int, kind: str,
                    notes: list[str]) -> list[dict]:
    path = Path(path)
    if not len(faces):
        what = "frames" if kind == "video" else ("images" if kind == "folder" else "image")
        return [_candidate_row(path, kind, status=NO_FACE,
                               message=f"{NO_FACE} in {examined} sampled {what}" if kind != "image" else NO_FACE,
                               notes=notes)]
    out = []
    for r in score_people(b, faces):
        r["notes"] = notes + r["notes"]
        out.append(_candidate_row(path, kind, **r))
    return out


# ---- the cache ------------------------------------------------------------------------------------

def cache_path(project) -> Path:
    return Path(project.root) / CACHE_FILE


def read_cache(project) -> dict:
    try:
        data = read_json(cache_path(project))
    except (FileNotFoundError, ValueError):
        return {"version": CACHE_VERSION, "entries": {}}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {"version": CACHE_VERSION, "entries": {}}
    data.setdefault("entries", {})
    return data


def _file_key(path: str) -> dict:
    from core.media import types as mediatypes

    p = Path(path)
    try:
        if p.is_dir():
            files = mediatypes.images_in(p)
            return {"size": sum(f.stat().st_size for f in files),
                    "mtime": max((f.stat().st_mtime for f in files), default=p.stat().st_mtime)}
        st = p.stat()
        return {"size": st.st_size, "mtime": st.st_mtime}
    except OSError:
        return {"size": None, "mtime": None}


def write_cache(project, b_signature: str, b_info: dict, results: dict[str, list[dict]]) -> None:
    """Merge these candidates' rows into PROJECT/fit.json (atomic). Rows computed against another
    B are dropped: they no longer say anything about this B."""
    from core.project.projects import now_iso

    data = read_cache(project)
    if data.get("b_signature") != b_signature:
        data["entries"] = {}
    data.update(version=CACHE_VERSION, b_signature=b_signature, b=b_info, updated=now_iso())
    for path, rows in results.items():
        data["entries"][path] = {**_file_key(path), "updated": now_iso(), "rows": rows}
    atomic_write_json(cache_path(project), data)


def rank_project_sources(project) -> list[dict]:
    """The ranking of the project's side-A sources as plain rows (for the TUI's project screen).

    Reads only `PROJECT/fit.json` and file sizes (cheap: safe to call on every refresh). Each
    side-A source gives its cached rows (one per person), ranked by score; a source never ranked
    gives one row with status "not ranked" (start a `fit` job: `facepair fit NAME`). Every row
    has `stale: True` when the source file or B's faces changed since it was ranked.
    """
    data = read_cache(project)
    _, signature = _b_signature(project)
    b_changed = data.get("b_signature") != signature
    rows = []
    for s in project.sources_of("a"):
        entry = data["entries"].get(s.path)
        if entry is None:
            rows.append(_candidate_row(Path(s.path), s.kind, status="not ranked", stale=False,
                                       message=f"run `facepair fit {project.name}` to rank it"))
            continue
        key = _file_key(s.path)
        stale = b_changed or key.get("size") != entry.get("size") or key.get("mtime") != entry.get("mtime")
        for r in entry.get("rows", []):
            rows.append({**r, "stale": bool(stale)})
    return rank_rows(rows)


# ---- the job --------------------------------------------------------------------------------------

def check_candidates(project, candidates: list[str] | None) -> tuple[list[str], bool]:
    """Absolute candidate paths (the side-A sources when none are given) and whether they came from A."""
    from core.project.projects import check_source_path

    if not candidates:
        paths = [s.path for s in project.sources_of("a")]
        if not paths:
            raise FitError(f"no candidates: pass --candidates VIDEO|IMAGE|FOLDER…, or add footage to side A "
                           f"(`facepair add-source {project.name} a PATH…`) to rank it")
        return paths, True
    out = []
    problems = []
    for c in candidates:
        p = Path(c).expanduser().resolve()
        why = check_source_path(p)
        if why:
            problems.append(why)
        elif str(p) not in out:
            out.append(str(p))
    if problems:
        raise FitError("cannot rank these candidates:\n  " + "\n  ".join(problems))
    return out, False


def check_frames(frames) -> int:
    try:
        n = int(frames)
    except (TypeError, ValueError):
        raise FitError(f"--frames must be a whole number, not {frames!r}") from None
    if not 1 <= n <= MAX_FRAMES:
        raise FitError(f"--frames {n} is out of range: sample 1–{MAX_FRAMES} frames per candidate")
    return n


def _faces_of_candidate(project, path: Path, a_source, frames: int, detector: str, use_store: bool,
                        progress, cancelled) -> tuple[Faces, int, list[str]]:
    """A candidate's faces: the crops the extraction kept when it is an extracted side-A source,
    else found by sampling the file."""
    if use_store and a_source is not None:
        faces = faces_from_crops(project, "a", a_source.id)
        if len(faces):
            return faces, len(np.unique(faces.frames)), ["faces kept by the extraction (faces/a)"]
    return find_in_media(path, frames, detector, progress, cancelled)


def rank(project, candidates: list[str] | None = None, frames: int = FRAMES, detector: str = "hog",
         ctx=None, use_store: bool = True) -> dict:
    """Rank `candidates` (default: the side-A sources) for B's face. Usable without a job (`ctx`
    None). Returns `{"b": {...}, "rows": [...], "candidates": [...], "side_a": bool}` and, for
    side-A sources, updates PROJECT/fit.json."""
    from core.faces import detect

    frames = check_frames(frames)
    try:
        detector = detect.check_detector(detector)
    except detect.DetectorError as e:
        raise FitError(str(e)) from None
    paths, from_a = check_candidates(project, candidates)
    report = _Report(ctx)
    b = b_faces(project, frames, detector, report.progress_for(f"B's faces ({project.label_b})"), report.cancelled)
    b_profile, b_info = _b_summary(project, b, report)
    a_sources = {s.path: s for s in project.sources_of("a")}
    results: dict[str, list[dict]] = {}
    for i, path in enumerate(paths, 1):
        report.check_cancelled()
        stage = f"candidate {i}/{len(paths)}: {Path(path).name}"
        results[path] = _rank_candidate(project, Path(path), a_sources.get(path), b_profile, frames, detector,
                                        use_store, report, stage)
    ranked = rank_rows([r for rows in results.values() for r in rows])
    cached = {p: rows for p, rows in results.items() if p in a_sources}
    if cached:
        write_cache(project, b.signature, b_info, cached)
    report.summary(paths, ranked)
    return {"b": b_info, "rows": ranked, "candidates": paths, "side_a": from_a}


class _Report:
    """What a ranking tells its job (messages, progress, the summary), and nothing without one."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.cancelled = (lambda: ctx.cancelled) if ctx is not None else None

    def say(self, text: str, level: str = "info") -> None:
        if self.ctx is not None:
            self.ctx.message(text, level)

    def progress_for(self, stage: str):
        if self.ctx is None:
            return None
        return lambda done, total: self.ctx.progress(done, total, stage=stage, unit="frames")

    def check_cancelled(self) -> None:
        if self.ctx is not None:
            self.ctx.check_cancelled()

    def summary(self, paths: list[str], ranked: list[dict]) -> None:
        if self.ctx is None:
            return
        best = ranked[0] if ranked and ranked[0]["score"] is not None else None
        self.ctx.emit("summary", candidates=len(paths), scored=sum(r["score"] is not None for r in ranked),
                      best=best["candidate"] if best else None, best_score=best["score"] if best else None)


def _b_summary(project, b, report: _Report):
    """B's profile and the plain description of it that the ranking and fit.json carry."""
    for n in b.notes:
        report.say(n)
    report.check_cancelled()
    b_profile = fit.profile(b.faces.landmarks)
    b_info = {"label": project.label_b, "faces": len(b.faces), "shape_faces": b_profile.shape_faces,
              "origin": b.origin, **b_profile.pose_range(), "notes": b.notes + b_profile.notes}
    report.say(f"B ({project.label_b}): {len(b.faces)} faces ({'faces/b' if b.origin == 'extraction' else 'B sources'}), "
               f"yaw {b_info['yaw'][0]:+.0f}…{b_info['yaw'][1]:+.0f}°, pitch {b_info['pitch'][0]:+.0f}…{b_info['pitch'][1]:+.0f}°")
    return b_profile, b_info


def _rank_candidate(project, p: Path, a_source, b_profile, frames: int, detector: str, use_store: bool,
                    report: _Report, stage: str) -> list[dict]:
    """One candidate's rows (one per person found, or one saying why none), said as they come."""
    from core.faces.alignments import AlignmentsError
    from core.media import types as mediatypes
    from core.media.read import MediaError

    kind = mediatypes.classify(p) or "unknown"
    try:
        faces, examined, notes = _faces_of_candidate(project, p, a_source, frames, detector, use_store,
                                                     report.progress_for(stage), report.cancelled)
        rows = score_candidate(b_profile, p, faces, examined, kind, notes)
    except (MediaError, AlignmentsError) as e:
        rows = [_candidate_row(p, kind, status=UNREADABLE, message=str(e))]
    report.check_cancelled()  # a candidate cut short by a cancel is not ranked
    for r in rows:
        if r["status"] == "ok":
            report.say(f"{p.name} person {r['person']}: score {r['score']:.0f}, poses covered "
                       f"{100 * r['coverage']:.0f}%; " + "; ".join(d["words"] for d in r["differences"]))
        else:
            report.say(f"{p.name}: {r['message'] or r['status']}", "warning")
    return rows


def run_job(ctx, candidates: list[str] | None = None, frames: int = FRAMES, detector: str = "hog",
            use_store: bool = True) -> dict:
    """The `fit` job kind. Args: `candidates` (absolute paths; none = the side-A sources),
    `frames` (sampled per video or folder), `detector` (hog, cnn), `use_store` (read extracted
    side-A sources from faces/a instead of sampling them again)."""
    return rank(ctx.project, candidates, frames, detector, ctx=ctx, use_store=use_store)
