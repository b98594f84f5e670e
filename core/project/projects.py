"""A face-pair project: its folder layout, `project.toml`, the consent record and the name rules.

A project lives in `HOME/NAME/`. `project.toml` is the only file this module writes, always
atomically. Everything else in the folder is filled by later stages (faces, alignments, model,
runs, output).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import shutil
import socket
import tomllib
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs
import tomli_w

from core.errors import ProjectError
from core.media import types as mediatypes
from core.system.atomic import atomic_write_bytes
from core.system.clock import now_iso

SCHEMA_VERSION = 1
PROJECT_FILE = "project.toml"
SIDES = ("a", "b")
SUBDIRS = ("sources/a", "sources/b", "faces/a", "faces/b", "alignments", "model", "runs", "output")
MAX_NAME = 64

NAME_RULE = (
    "a project name is 1–64 characters, not '.' or '..', with no slashes, no control characters "
    "and no leading dot"
)


def home_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The projects home: `--home`, else $FACEPAIR_HOME, else the user data folder (platformdirs;
    on Linux $XDG_DATA_HOME/facepair, ~/.local/share/facepair by default)."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("FACEPAIR_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_data_dir("facepair", appauthor=False)).expanduser().resolve()


def normalize_name(name: str) -> str:
    """A project name as it is stored and compared: Unicode NFC, so "é" typed composed (U+00E9) or
    decomposed (e + U+0301) names one project, not two look-alikes."""
    return unicodedata.normalize("NFC", name) if isinstance(name, str) else name


def validate_name(name: str) -> None:
    """Refuse names that are unsafe as one folder name; the message states the rule."""
    problem = None
    if not name or not name.strip():
        problem = "it is empty"
    elif name in (".", ".."):
        problem = f"'{name}' is not a folder name"
    elif "/" in name or "\\" in name:
        problem = "it contains a slash"
    elif any(unicodedata.category(c).startswith("C") for c in name):
        problem = "it contains a control character"
    elif len(name) > MAX_NAME:
        problem = f"it is {len(name)} characters long"
    elif name.startswith("."):
        problem = "it starts with a dot (hidden folder)"
    elif name != name.strip():
        problem = "it starts or ends with whitespace"
    if problem:
        raise ProjectError(f"invalid project name {name!r}: {problem}; {NAME_RULE}.")


def validate_side(side: str) -> str:
    side = side.lower()
    if side not in SIDES:
        raise ProjectError(f"side must be 'a' or 'b', not {side!r}")
    return side


@dataclass(frozen=True)
class Consent:
    """Who consented to appear in this project's synthetic media, what they agreed to, and when."""

    statement: str
    by: tuple[str, ...]
    recorded: str
    recorded_by: str


@dataclass(frozen=True)
class Source:
    """A video, image or folder of images recorded for one side (by absolute path)."""

    side: str
    path: str
    kind: str  # video | image | folder
    size: int
    mtime: float
    added: str
    copied_from: str | None = None
    fingerprint: str | None = None  # core.media.fingerprint's hash of the file when added (None: older project)
    frames: int | None = None  # a video's container frame count when added

    @property
    def id(self) -> str:
        """A stable id used to name faces and alignment files: readable stem + path hash."""
        stem = re.sub(r"[^A-Za-z0-9]+", "-", Path(self.path).stem).strip("-")[:24] or "src"
        digest = hashlib.sha1(f"{self.side}:{self.path}".encode()).hexdigest()[:6]
        return f"{stem}-{digest}"


@dataclass
class Project:
    root: Path
    name: str
    label_a: str
    label_b: str
    created: str
    consent: Consent
    sources: list[Source] = field(default_factory=list)
    schema: int = SCHEMA_VERSION

    # ---- layout -------------------------------------------------------------------------
    @property
    def file(self) -> Path:
        return self.root / PROJECT_FILE

    def label(self, side: str) -> str:
        return self.label_a if validate_side(side) == "a" else self.label_b

    def sources_dir(self, side: str) -> Path:
        return self.root / "sources" / validate_side(side)

    def faces_dir(self, side: str) -> Path:
        return self.root / "faces" / validate_side(side)

    @property
    def alignments_dir(self) -> Path:
        return self.root / "alignments"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def home(self) -> Path:
        return self.root.parent

    def sources_of(self, side: str) -> list[Source]:
        side = validate_side(side)
        return [s for s in self.sources if s.side == side]

    def face_count(self, side: str) -> int:
        d = self.faces_dir(side)
        if not d.is_dir():
            return 0
        return sum(1 for p in d.iterdir() if p.suffix == ".png" and not p.name.startswith("."))

    # ---- persistence --------------------------------------------------------------------
    def to_toml(self) -> dict:
        return {
            "schema": self.schema,
            "name": self.name,
            "created": self.created,
            "people": {"a": {"label": self.label_a}, "b": {"label": self.label_b}},
            "consent": {
                "statement": self.consent.statement,
                "by": list(self.consent.by),
                "recorded": self.consent.recorded,
                "recorded_by": self.consent.recorded_by,
            },
            "sources": [{k: v for k, v in asdict(s).items() if v is not None} for s in self.sources],
        }

    def save(self) -> None:
        atomic_write_bytes(self.file, tomli_w.dumps(self.to_toml()).encode("utf-8"))

    @classmethod
    def from_toml(cls, root: Path, data: dict) -> Project:
        try:
            schema = int(data["schema"])
            if schema > SCHEMA_VERSION:
                raise ProjectError(
                    f"{root / PROJECT_FILE} has schema {schema}, newer than this facepair ({SCHEMA_VERSION}); upgrade facepair"
                )
            c = data["consent"]
            consent = Consent(
                statement=str(c["statement"]),
                by=tuple(str(x) for x in c.get("by", ())),
                recorded=str(c["recorded"]),
                recorded_by=str(c.get("recorded_by", "")),
            )
            for i, s in enumerate(data.get("sources", [])):
                side = s.get("side") if isinstance(s, dict) else None
                if side not in SIDES:
                    raise ProjectError(f"{root / PROJECT_FILE}: sources[{i}] (path {s.get('path') if isinstance(s, dict) else s!r}) "
                                       f"has side = {side!r}; a source's side must be 'a' or 'b'")
            sources = [
                Source(
                    side=s["side"], path=s["path"], kind=s["kind"], size=int(s["size"]),
                    mtime=float(s["mtime"]), added=s["added"], copied_from=s.get("copied_from"),
                    fingerprint=s.get("fingerprint"),
                    frames=int(s["frames"]) if s.get("frames") is not None else None,
                )
                for s in data.get("sources", [])
            ]
            return cls(
                root=root, name=str(data["name"]), label_a=str(data["people"]["a"]["label"]),
                label_b=str(data["people"]["b"]["label"]), created=str(data["created"]),
                consent=consent, sources=sources, schema=schema,
            )
        except ProjectError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise ProjectError(f"{root / PROJECT_FILE} is malformed: missing or bad field {e}") from e


# ---- operations on the home ---------------------------------------------------------------

def project_root(home: Path, name: str) -> Path:
    """HOME/NAME for a (normalised) name; a folder whose name differs only in Unicode normalisation
    (made before names were normalised, or by hand) is that project's folder."""
    name = normalize_name(name)
    validate_name(name)
    root = Path(home) / name
    if not root.exists() and Path(home).is_dir():
        for p in Path(home).iterdir():
            if p.name != name and normalize_name(p.name) == name:
                return p
    return root


def create_project(
    home: Path, name: str, label_a: str, label_b: str, consent: str | None,
    consent_by: list[str] | None = None,
) -> Project:
    """Create HOME/NAME with project.toml and the empty stage folders. No consent, no project."""
    name = normalize_name(name)
    root = project_root(home, name)
    if not consent or not consent.strip():
        raise ProjectError(
            "refusing to create a project without consent: facepair makes synthetic media of real "
            "people, so pass --consent \"<who agreed to what>\" recording that both people agreed to be in it."
        )
    for side, label in (("a", label_a), ("b", label_b)):
        if not label or not label.strip():
            raise ProjectError(f"label for side {side} is empty: name the person (--{side} LABEL).")
    if root.exists():
        raise ProjectError(f"project {name!r} already exists at {root}")
    by = tuple(consent_by) if consent_by else (label_a.strip(), label_b.strip())
    project = Project(
        root=root, name=name, label_a=label_a.strip(), label_b=label_b.strip(), created=now_iso(),
        consent=Consent(statement=consent.strip(), by=by, recorded=now_iso(), recorded_by=_who()),
    )
    root.mkdir(parents=True)
    try:
        for sub in SUBDIRS:
            (root / sub).mkdir(parents=True, exist_ok=True)
        project.save()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return project


def load_project(home: Path, name: str) -> Project:
    name = normalize_name(name)
    root = project_root(home, name)
    f = root / PROJECT_FILE
    if not f.is_file():
        raise ProjectError(f"no project named {name!r} in {home} (create it with `facepair new {name} ...`)")
    try:
        data = tomllib.loads(f.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ProjectError(f"{f} is not valid TOML: {e}") from e
    project = Project.from_toml(root, data)
    check_folder_name(project)
    return project


def check_folder_name(project: Project) -> None:
    """A project folder renamed by hand: project.toml still names the old project, and the jobs it
    starts would look for that one. Say so and how to fix it instead (renaming the folder back
    keeps sources copied into it, whose paths point inside the old folder)."""
    folder, recorded = normalize_name(project.root.name), normalize_name(project.name)
    if folder == recorded:
        return
    old = project.root.parent / recorded
    fix = (f"rename the folder back: mv {_sh(project.root)} {_sh(old)}" if not old.exists() else
           f"a folder {old} exists too: move one of them out of {project.root.parent}")
    raise ProjectError(
        f"the folder {project.root} holds project {recorded!r} (its {PROJECT_FILE} says name = {recorded!r}); "
        f"it was renamed by hand, and facepair does not follow a renamed folder (copied sources, jobs and "
        f"labels name the project {recorded!r}). To fix it, {fix}")


def _sh(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def project_names(home: Path) -> list[str]:
    """Names of folders in HOME that hold a project.toml (valid or not), sorted."""
    home = Path(home)
    if not home.is_dir():
        return []
    return sorted(p.name for p in home.iterdir() if (p / PROJECT_FILE).is_file())


# What a project folder holds (project.toml, the stage folders, fit.json, the demo's marker). A
# folder with anything else in it is not deleted as an unreadable project: it may not be one.
PROJECT_ENTRIES = frozenset({PROJECT_FILE, "fit.json", "demo.json", *(d.split("/")[0] for d in SUBDIRS)})


def not_a_project_folder(root: Path) -> str | None:
    """Why `root` does not look like a facepair project folder, or None when it does: it holds a
    project.toml and nothing but what facepair puts there (and hidden files: atomic-write leftovers;
    a hidden folder such as .git is not facepair's)."""
    root = Path(root)
    if root.is_symlink() or not root.is_dir():
        return f"{root} is not a folder"
    if not (root / PROJECT_FILE).is_file():
        return f"{root} has no {PROJECT_FILE}"
    odd = sorted(p.name for p in root.iterdir() if p.name not in PROJECT_ENTRIES
                 and not (p.name.startswith(".") and p.is_file() and not p.is_symlink()))
    if odd:
        more = f" and {len(odd) - 5} more" if len(odd) > 5 else ""
        return f"{root} holds {', '.join(odd[:5])}{more}, which a facepair project folder does not"
    return None


def describe_source(side: str, path: Path, copied_from: str | None = None) -> Source:
    """A source record of `path` as it is now: size, mtime and its fingerprint (core.media.fingerprint)."""
    from core.media.fingerprint import fingerprint

    kind = mediatypes.classify(path)
    if kind == "folder":
        files = mediatypes.images_in(path)
        size = sum(p.stat().st_size for p in files)
        mtime = max((p.stat().st_mtime for p in files), default=path.stat().st_mtime)
    else:
        st = path.stat()
        size, mtime = st.st_size, st.st_mtime
    fp = fingerprint(path, kind) or {}
    return Source(side=side, path=str(path), kind=kind or "unknown", size=size, mtime=mtime, added=now_iso(),
                  copied_from=copied_from, fingerprint=fp.get("hash"), frames=fp.get("frames"))


def refresh_source(project: Project, source: Source) -> Source:
    """Record `source`'s file as it is now (size, mtime, fingerprint) in project.toml, re-read
    first so a concurrent change to other sources is kept. Returns the new record."""
    fresh = describe_source(source.side, Path(source.path), source.copied_from)
    fresh = Source(**{**asdict(fresh), "added": source.added})
    current = load_project(project.home, project.name)
    current.sources = [fresh if (s.side, s.path) == (source.side, source.path) else s for s in current.sources]
    current.save()
    project.sources = [fresh if (s.side, s.path) == (source.side, source.path) else s for s in project.sources]
    return fresh


def check_source_path(path: Path) -> str | None:
    """Why `path` cannot be a source, or None when it can."""
    if not path.exists():
        return f"{path}: no such file or folder"
    kind = mediatypes.classify(path)
    if kind is None:
        return (f"{path}: unsupported file type {path.suffix or '(none)'!r}; facepair reads videos "
                f"({', '.join(sorted(mediatypes.VIDEO_EXTS))}) and images ({', '.join(sorted(mediatypes.IMAGE_EXTS))})")
    if kind == "folder" and not mediatypes.images_in(path):
        return f"{path}: folder holds no images"
    if not os.access(path, os.R_OK):
        return f"{path}: not readable"
    return _pixel_problem(path, kind)


def _pixel_problem(path: Path, kind: str) -> str | None:
    """Why an image source (or images in a folder) is over the pixel limit, read from headers."""
    from core.media.read import MediaError, check_image_pixels

    files = [path] if kind == "image" else mediatypes.images_in(path) if kind == "folder" else []
    over = []
    for f in files:
        try:
            check_image_pixels(f)
        except MediaError as e:
            over.append(str(e))
    if not over:
        return None
    if kind == "image":
        return over[0]
    more = f" (and {len(over) - 3} more)" if len(over) > 3 else ""
    return f"{path}: {len(over)} image(s) over the pixel limit{more}:\n    " + "\n    ".join(over[:3])


def add_sources(project: Project, side: str, paths: list[str | os.PathLike], copy: bool = False) -> list[Source]:
    """Record sources for one side. All paths are checked first: one bad path records none."""
    side = validate_side(side)
    resolved = [Path(p).expanduser().resolve() for p in paths]
    if not resolved:
        raise ProjectError("no paths given")
    problems = [msg for p in resolved if (msg := check_source_path(p))]
    if problems:
        raise ProjectError("nothing was added:\n  " + "\n  ".join(problems))
    known = {s.path for s in project.sources_of(side)} | {s.copied_from for s in project.sources_of(side)}
    added: list[Source] = []
    copies: list[Path] = []
    try:
        for p in resolved:
            if str(p) in known:
                continue
            if copy:
                dest = _unique_dest(project.sources_dir(side), p.name)
                copies.append(dest)  # before copying: a copy cut short (a full disk) is removed too
                if p.is_dir():
                    dest.mkdir(parents=True)
                    for f in mediatypes.images_in(p):
                        shutil.copy2(f, dest / f.name)
                else:
                    shutil.copy2(p, dest)
                src = describe_source(side, dest, copied_from=str(p))
            else:
                src = describe_source(side, p)
            added.append(src)
            known.add(str(p))
        project.sources.extend(added)
        project.save()
    except BaseException:
        for s in added:
            if s in project.sources:
                project.sources.remove(s)
        for c in copies:
            shutil.rmtree(c, ignore_errors=True) if c.is_dir() else c.unlink(missing_ok=True)
        raise
    return added


def remove_source(project: Project, side: str, path_or_id: str) -> Source:
    side = validate_side(side)
    for s in project.sources_of(side):
        if path_or_id in (s.id, s.path, str(Path(path_or_id).expanduser().resolve())):
            project.sources.remove(s)
            project.save()
            return s
    raise ProjectError(f"side {side} of {project.name!r} has no source {path_or_id!r}")


def _unique_dest(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / name
    stem, suffix, n = Path(name).stem, Path(name).suffix, 1
    while dest.exists():
        dest = folder / f"{stem}-{n}{suffix}"
        n += 1
    return dest


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
