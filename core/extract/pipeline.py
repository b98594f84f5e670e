"""The extraction pipeline and the `extract` job kind.

Pipeline (per source, core.extract.source): decode (a thread, `core.media.read`) → cut into
segments → in worker processes (core.extract.finder): detect / track → 68 landmarks → smooth in
time → align → crop (PNG bytes) → back in order in this process: filters (size, blur, identity:
core.extract.identity) → write kept crops → the alignments store (one atomic part every few
seconds) → progress events.

This module is the job: the settings checked, the sides' locks held, every source of each side
extracted, and the totals reported per side. With `redo_missing` it runs only the frames of the
already-extracted sources that have no face or a lost track (core.extract.missing), re-detected
with this run's detector and size limit (core.extract.redo); refused with `fresh`.

Identity filter: a face is kept when its track's dlib descriptor is within `identity_threshold`
(0.6) of a reference: the `--reference` photos, else the side's first confident face (saved in
`alignments/_reference-SIDE.json` so a resumed run uses the same one). One descriptor is computed
per track and segment (on its most confident frame), not per frame: ~145 ms each on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import FacepairError
from core.extract import options
from core.extract.finder import DETECT_EVERY, default_workers
from core.extract.identity import Identity, reference_path
from core.extract.options import REDO_WITH_FRESH
from core.extract.source import (
    BLUR_THRESHOLD,
    FLUSH_SECONDS,
    ExtractSettings,
    Pools,
    Progress,
    SideSummary,
    extract_source,
    note,
    remove_source_output,
)
from core.faces import align, detect
from core.media import read as media
from core.media.probe import probe

SIZE_RANGE = options.SIZE_RANGE


def parse_settings(size: int = 256, every: int = 1, detector: str = "hog", min_face: int | None = None,
                   blur: float = BLUR_THRESHOLD, identity: bool = True,
                   identity_threshold: float = detect.IDENTITY_THRESHOLD, smooth: bool = True,
                   coverage: float = align.COVERAGE, detect_every: int = DETECT_EVERY) -> ExtractSettings:
    """Checked settings; FacepairError naming the bad value."""
    if not (SIZE_RANGE[0] <= int(size) <= SIZE_RANGE[1]):
        raise FacepairError(f"--size {size} is out of range: use {SIZE_RANGE[0]}..{SIZE_RANGE[1]} pixels")
    if int(every) < 1:
        raise FacepairError(f"--every {every} must be 1 or more (1 = every frame)")
    if min_face is not None and int(min_face) < 20:
        raise FacepairError(f"--min-face {min_face} is too small: dlib finds faces of 20 px and more")
    if not 0 < float(coverage) <= 4:
        raise FacepairError(f"coverage {coverage} must be in (0, 4]")
    try:
        detector = detect.check_detector(detector)
    except detect.DetectorError as e:
        raise FacepairError(str(e)) from None
    return ExtractSettings(size=int(size), every=int(every), detector=detector,
                           min_face=int(min_face) if min_face else None, blur=float(blur), identity=bool(identity),
                           identity_threshold=float(identity_threshold), smooth=bool(smooth),
                           coverage=float(coverage), detect_every=max(1, int(detect_every)))


def run_job(ctx, side: str = "both", size: int = 256, every: int = 1, detector: str = "hog",
            min_face: int | None = None, reference: list[str] | None = None, blur: float = BLUR_THRESHOLD,
            identity: bool = True, identity_threshold: float = detect.IDENTITY_THRESHOLD, smooth: bool = True,
            coverage: float = align.COVERAGE, detect_every: int = DETECT_EVERY, workers: int | None = None,
            fresh: bool = False, redo_missing: bool = False, flush_seconds: float = FLUSH_SECONDS,
            pool_min_frames: int | None = None) -> dict:
    """The `extract` job kind. Returns (and emits as a `summary` event) per-side totals; with
    `redo_missing`, what the redo of the missing frames did (core.extract.redo).

    Holds the project's `extract-a` / `extract-b` lock for the sides it extracts, so two jobs
    never write the same side's crops and stores at once."""
    from core.jobs import locks

    held: list[str] = []
    try:
        for s in (("a", "b") if side in ("both", None) else (side,)):
            if s in ("a", "b"):
                locks.acquire(ctx.project, f"extract-{s}", ctx.job_id, os.getpid())
                held.append(f"extract-{s}")
        return extract(ctx.project, ctx, side=side, size=size, every=every, detector=detector, min_face=min_face,
                       reference=reference, blur=blur, identity=identity, identity_threshold=identity_threshold,
                       smooth=smooth, coverage=coverage, detect_every=detect_every, workers=workers, fresh=fresh,
                       redo_missing=redo_missing, flush_seconds=flush_seconds, pool_min_frames=pool_min_frames)
    finally:
        for name in held:
            locks.release(ctx.project, name, ctx.job_id)


def _sides(side: str, reference: list[str] | None) -> tuple[str, ...]:
    """The sides to extract; FacepairError for a bad side or reference photos that cannot be used."""
    sides = ("a", "b") if side in ("both", None) else (side,)
    for s in sides:
        if s not in ("a", "b"):
            raise FacepairError(f"--side must be a, b or both, not {side!r}")
    for r in reference or []:
        if not Path(r).is_file():
            raise FacepairError(f"reference photo {r}: no such file")
    if reference and len(sides) != 1:
        raise FacepairError("--reference photos show one person: use them with --side a or --side b")
    return sides


def _frames_to_do(sources, every: int) -> int:
    """Frames the sources hold at `every` (what the progress counts to); unreadable ones count 0."""
    total = 0
    for s in sources:
        try:
            n = probe(s.path).frames or 0
            total += len(range(0, n, every)) if s.kind == "video" else n
        except media.MediaError:
            pass
    return total


def _extract_side(ctx, project, s: str, settings: ExtractSettings, reference: list[str] | None, fresh: bool,
                  summ: SideSummary, progress: Progress, pools: Pools, flush_seconds: float,
                  pool_min_frames: int | None) -> None:
    """Every source of side `s`, with the side's identity filter; an unreadable source is recorded."""
    if fresh:
        for src in project.sources_of(s):
            remove_source_output(project, s, src.id)
        reference_path(project, s).unlink(missing_ok=True)
    if not project.sources_of(s):
        note(ctx, f"side {s} ({project.label(s)}) has no sources: add some with "
                  f"`facepair add-source {project.name} {s} PATH…`", "warning")
        return
    ident = Identity(project, s, settings.identity_threshold, reference) if settings.identity else None
    if ident is not None and reference:
        note(ctx, f"side {s}: keeping faces within {settings.identity_threshold} of {ident.origin}")
    for src in project.sources_of(s):
        if ctx is not None:
            ctx.check_cancelled()
        try:
            extract_source(ctx, project, src, settings, ident, summ, progress, pools, flush_seconds,
                           pool_min_frames)
        except media.MediaError as e:
            summ.errors[src.path] = str(e)
            note(ctx, str(e), "error")
    if ident is not None and ident.origin and not reference:
        note(ctx, f"side {s}: identity reference = {ident.origin}")


def _side_line(s: str, summ: SideSummary) -> str:
    """One side's totals, as the job's closing message says them."""
    dropped = ", ".join(f"{v} {k}" for k, v in summ.dropped.items() if v) or "none dropped"
    notes = []
    if summ.already_extracted:
        n = len(summ.already_extracted)
        notes.append(f"{n} source{'s' if n != 1 else ''} already extracted")
    if summ.changed:
        notes.append(f"re-extracted (file changed): {', '.join(Path(p).name for p in summ.changed)}")
    if summ.partial:
        notes.append("partial: " + ", ".join(f"{Path(p['path']).name} ({p['decoded']} of {p['expected']} "
                                              f"frames)" for p in summ.partial))
    if summ.corrupt:
        notes.append(f"{len(summ.corrupt)} corrupt images skipped: {', '.join(summ.corrupt[:5])}")
    return (f"side {s}: {summ.faces_kept} faces kept of {summ.faces_found} found in "
            f"{summ.frames} frames ({dropped})" + "".join(f"; {n}" for n in notes))


def _check_outcome(project, sides: tuple[str, ...], summaries: dict[str, SideSummary]) -> None:
    """FacepairError when the sides have no source, or not one of them could be extracted."""
    every_source = [src for s in sides for src in project.sources_of(s)]
    failed = [p for summ in summaries.values() for p in summ.errors]
    if every_source and len(failed) == len(every_source):
        raise FacepairError("nothing could be extracted:\n  " + "\n  ".join(
            m for summ in summaries.values() for m in summ.errors.values()))
    if not every_source:
        raise FacepairError(f"project {project.name!r} has no sources on side {'/'.join(sides)}: "
                            f"add some with `facepair add-source {project.name} a|b PATH…`")


def extract(project, ctx=None, side: str = "both", reference: list[str] | None = None, workers: int | None = None,
            fresh: bool = False, redo_missing: bool = False, flush_seconds: float = FLUSH_SECONDS,
            pool_min_frames: int | None = None, **options) -> dict:
    """Extract the sources of one or both sides (see `run_job`); usable without a job (`ctx` None)."""
    if fresh and redo_missing:
        raise FacepairError(REDO_WITH_FRESH)
    settings = parse_settings(**options)
    sides = _sides(side, reference)
    if redo_missing:
        return redo_missing_frames(project, ctx, sides, settings, reference, flush_seconds)
    workers = max(1, int(workers or default_workers()))
    sources = [s for side_ in sides for s in project.sources_of(side_)]
    progress = Progress(ctx, _frames_to_do(sources, settings.every) or None)
    summaries: dict[str, SideSummary] = {}
    project.alignments_dir.mkdir(parents=True, exist_ok=True)
    pools = Pools(workers)
    try:
        for s in sides:
            summ = summaries[s] = SideSummary(s, sources=len(project.sources_of(s)))
            _extract_side(ctx, project, s, settings, reference, fresh, summ, progress, pools, flush_seconds,
                          pool_min_frames)
    finally:
        pools.close()
    result = {s: summ.as_dict() for s, summ in summaries.items()}
    if ctx is not None:
        ctx.emit("summary", **{"sides": result})
        for s, summ in summaries.items():
            ctx.message(_side_line(s, summ), "warning" if summ.partial else "info")
    _check_outcome(project, sides, summaries)
    return {"sides": result}


def redo_missing_frames(project, ctx, sides: tuple[str, ...], settings: ExtractSettings, reference: list[str] | None,
                        flush_seconds: float = FLUSH_SECONDS) -> dict:
    """`--redo-missing`: only the frames of extracted sources with no face or a lost track are
    re-detected (core.extract.redo); a `summary` event and one message per side say how many got a face."""
    from core.extract import redo

    summaries = redo.redo_sides(project, ctx, sides, settings, reference, flush_seconds)
    result = {"redo_missing": True, "sides": {s: summ.as_dict() for s, summ in summaries.items()}}
    if ctx is not None:
        ctx.emit("summary", **{"sides": result["sides"], "redo_missing": True})
        for summ in summaries.values():
            if (line := summ.line()) is not None:
                ctx.message(line, "warning" if summ.skipped else "info")
    every_source = [src for s in sides for src in project.sources_of(s)]
    skipped = {p: w for summ in summaries.values() for p, w in summ.skipped.items()}
    if not every_source:
        raise FacepairError(f"project {project.name!r} has no sources on side {'/'.join(sides)}: "
                            f"add some with `facepair add-source {project.name} a|b PATH…`")
    if len(skipped) == len(every_source):
        raise FacepairError("nothing could be redone:\n  " + "\n  ".join(f"{Path(p).name}: {w}"
                                                                       for p, w in skipped.items()))
    return result
