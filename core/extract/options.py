"""The `extract` job kind's declared options (core/extract/pipeline.py `run_job`).

`facepair extract`, the TUI's extraction dialog and the check before the job starts all come
from `SPEC` (core.jobs.spec). Light: no numpy or dlib, so `--help` stays quick.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import FacepairError
from core.jobs.spec import KindSpec, Option

SIZE_DEFAULT = 256
SIZE_RANGE = (64, 1024)  # crop pixels
MIN_FACE_AUTO = 60  # px: the smallest face found when --min-face is not given (and frames are small)
MIN_FACE_LEAST = 20  # px: dlib finds no smaller face
IDENTITY_DEFAULT = 0.6  # dlib's same-person descriptor distance
BLUR_DEFAULT = 20.0
DETECT_EVERY_DEFAULT = 10
COVERAGE_DEFAULT = 2.0  # core.faces.align.COVERAGE
FLUSH_SECONDS_DEFAULT = 5.0

SPEC = KindSpec(
    kind="extract",
    locks=("extract-a", "extract-b"),  # the job takes those of the sides it extracts
    options=(
        Option("side", str, "both", choices=("a", "b", "both"), help="which side's sources (default {default})",
               label="Side"),
        Option("detector", str, "hog", choices=("hog", "cnn"),
               help="hog (default): fast, frontal faces; cnn: slower, finds turned and dim faces",
               label="Detector (hog: fast, frontal; cnn: slower, turned and dim faces)"),
        Option("size", int, SIZE_DEFAULT, min=SIZE_RANGE[0], max=SIZE_RANGE[1], metavar="PX",
               out_of_range="{value} is out of range: use {min}..{max} pixels",
               help="crop size, {min}..{max} (default {default})", label="Crop size in px, {min}..{max} (empty: {default})"),
        Option("every", int, 1, min=1, metavar="N", help="use every Nth video frame (default {default})",
               label="Use every Nth video frame (empty: {default})"),
        Option("min_face", int, None, min=MIN_FACE_LEAST, metavar="PX",
               out_of_range="{value} is too small: dlib finds faces of {min} px and more",
               auto=f"{MIN_FACE_AUTO} px, or 1/16 of a large frame's short side",
               help="smallest face to find and keep (default: {default})",
               label="Smallest face in px (empty: automatic)"),
        Option("reference", list, None, nargs="+", metavar="IMAGE",
               help="photos of the side's person: keep only faces of this person (with --side a or b)",
               label="Reference photos of the side's person (comma-separated; with side a or b)"),
        Option("identity_threshold", float, IDENTITY_DEFAULT, metavar="D",
               help="descriptor distance to the reference that still counts as the same person (default {default})",
               label="Identity threshold (descriptor distance; empty: {default})"),
        Option("identity", bool, True, flag=None, negate="--no-identity",
               help="keep every face (default: keep faces of the --reference person, else of the side's "
                    "first confident face)",
               label="Keep only faces of the reference person (else of the side's first confident face)"),
        Option("blur", float, BLUR_DEFAULT, metavar="T",
               help="drop faces blurrier than this (variance of the Laplacian; 0 keeps all; default {default})",
               label="Drop faces blurrier than (variance of the Laplacian; 0 keeps all; empty: {default})"),
        Option("smooth", bool, True, flag=None, negate="--no-smooth", help="do not smooth video landmarks in time",
               label="Smooth video landmarks in time"),
        Option("detect_every", int, DETECT_EVERY_DEFAULT, min=1, metavar="K",
               help="full-frame detection every K video frames, tracking in between (default {default})",
               label="Full detection every K video frames (empty: {default})"),
        Option("workers", int, None, min=1, metavar="N", auto="one per core",
               help="worker processes (default: {default})", label="Worker processes (empty: {default})"),
        Option("fresh", bool, False, help="forget earlier results of these sides and start over",
               label="Forget earlier results of these sides and start over"),
        Option("redo_missing", bool, False,
               help="re-detect only the frames of extracted sources with no face or a lost track "
                    "(`facepair missing` lists them), e.g. with --detector cnn or a lower --min-face",
               label="Only re-detect frames with no face or a lost track (e.g. with cnn or a smaller face)"),
        # For tests and benchmarks only: not on the command line or in the dialog.
        Option("coverage", float, COVERAGE_DEFAULT, min=0, above_min=True, max=4, flag=None,
               out_of_range="{value} must be in ({min}, {max}]"),
        Option("flush_seconds", float, FLUSH_SECONDS_DEFAULT, min=0, flag=None),
        Option("pool_min_frames", int, None, min=1, flag=None),
    ),
)


REDO_WITH_FRESH = ("--redo-missing re-detects frames of what is already extracted and --fresh forgets it: "
                   "use one or the other (--fresh, then `facepair missing NAME` to see what is left)")


def check_request(project, side: str, reference: list[str] | None, fresh: bool = False,
                  redo_missing: bool = False) -> list[str] | None:
    """What `facepair extract` and the TUI check before the job starts, in the same words: the
    sides have sources, reference photos go with one side and exist, --redo-missing without
    --fresh. Returns the reference photos' absolute paths."""
    if fresh and redo_missing:
        raise FacepairError(REDO_WITH_FRESH)
    sides = ("a", "b") if side == "both" else (side,)
    if not any(project.sources_of(s) for s in sides):
        which = "either side" if side == "both" else f"side {side}"
        raise FacepairError(f"project {project.name!r} has no sources on {which}: add some with "
                            f"`facepair add-source {project.name} a|b PATH…`")
    if not reference:
        return None
    if side == "both":
        raise FacepairError("--reference photos show one person: use them with --side a or --side b")
    paths = []
    for r in reference:
        path = Path(r.strip()).expanduser().resolve()
        if not path.is_file():
            raise FacepairError(f"reference photo {r.strip()}: no such file")
        paths.append(str(path))
    return paths
