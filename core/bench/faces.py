"""`facepair bench faces`: curation at the size the issue names, a side of 10,000 faces.

How the side is made (so the figures are read for what they are): the real extraction
(`core.extract.pipeline.extract`, default settings: 256-px crops) runs once on real clips
(../shared/data/talking/d3.mp4, a woman talking and turning her head, when present, else a
synthetic portrait clip),
then its sources are replicated: each copy is a new source of side A (a symlink to the clip, so
its id differs), its alignments store copied folder and all (meta.json renamed to the new id),
and its crops copied as separate files under the new source's names, until the side holds at
least `faces` faces. Every crop is a real 256-px PNG of a real face, each source a real store;
only the repetition is synthetic (the copies' pixels repeat, which changes no timing here: the
crops are decoded one by one, none is skipped for being a duplicate).

Reported (`run()` returns `{"faces": {...}}`): `faces`, `real_faces`, `sources`;
`scores_first_s` (the side's score table the first time: every source's scores computed and
cached) and `scores_cached_s`; `thumbs_faces_per_s` and `thumbs_s` (the thumbnail cache built
from nothing, `workers` threads) and `thumbs_cpu_ms_per_face` (CPU time of the process's threads
a face: on a shared machine the wall-clock rate drops with the load, this much less); `thumbs_check_s` (the same build with nothing to do: what the
screen pays at each open); `first_page_s` (open what the screen opens — score table, thumbnail
index — and decode the first page's thumbnails); `screen_first_page_s` (the Textual faces
screen itself, pushed in a headless app, until its first page is drawn with its thumbnails:
given when the caller passes `screen`, since core never imports the TUI), each with its CPU
time (`first_page_cpu_s`, `screen_first_page_cpu_s`: every thread of the process); `sort_ms` per key
(the slower of ascending and descending, 10,000 rows) and `sort_max_ms`. The crops were just
written, so they are in the page cache: a cold disk adds its reads to `thumbs_faces_per_s`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SHARED_TALKING = Path(__file__).resolve().parents[3] / "shared" / "data" / "talking"
DEFAULT_CLIPS = ("d3.mp4",)  # one person: the side's identity filter keeps them all
PAGE = 60  # thumbnails on a large terminal's first page


def default_clips(tmp: Path) -> list[Path]:
    shared = [SHARED_TALKING / c for c in DEFAULT_CLIPS]
    if all(p.is_file() for p in shared):
        return shared
    from core.media import synth

    return [synth.portrait_clip("astronaut", tmp / "astronaut.mp4", frames=200, size=(480, 480), seed=5)]


def _replicate(project, source, copy: int, clips_dir: Path) -> int:
    """One copy of an extracted source as a new source of side A; returns its faces."""
    import dataclasses

    from core.faces import alignments as store

    link = clips_dir / f"{Path(source.path).stem}-copy{copy:03d}{Path(source.path).suffix}"
    link.symlink_to(source.path)
    new = dataclasses.replace(source, path=str(link))
    src_store, dst_store = store.store_path(project, source.id), store.store_path(project, new.id)
    shutil.copytree(src_store, dst_store, ignore=shutil.ignore_patterns("scores.npz"))
    meta = json.loads((dst_store / store.META).read_text())
    meta["source"].update(id=new.id, path=new.path)
    (dst_store / store.META).write_text(json.dumps(meta))
    faces = project.faces_dir("a")
    n = 0
    for crop in sorted(faces.glob(f"{source.id}_*.png")):
        shutil.copyfile(crop, faces / crop.name.replace(source.id, new.id, 1))
        n += 1
    project.sources.append(new)
    return n


def make_side(home: Path, faces: int, clips: list[Path], say: Callable[[str], None]) -> tuple[object, dict]:
    """The bench project and what went into it (module notes)."""
    from core.extract import pipeline as extract
    from core.project.projects import add_sources, create_project

    project = create_project(home, "bench-faces", "A", "B", "benchmark run on test clips")
    add_sources(project, "a", clips)
    say(f"faces: extracting {', '.join(c.name for c in clips)} (real dlib)…")
    t0 = time.perf_counter()
    extract.extract(project, side="a")
    extract_s = time.perf_counter() - t0
    real = project.face_count("a")
    if real == 0:
        raise RuntimeError(f"no faces found in {', '.join(map(str, clips))}")
    originals, total, copy = list(project.sources_of("a")), real, 0
    say(f"faces: {real} real faces; copying them to {faces:,}…")
    clips_dir = home / "clips"
    clips_dir.mkdir()
    while total < faces:
        copy += 1
        for src in originals:
            total += _replicate(project, src, copy, clips_dir)
            if total >= faces:
                break
    project.save()
    return project, {"faces": total, "real_faces": real, "sources": len(project.sources_of("a")),
                     "clips": [c.name for c in clips], "extract_s": round(extract_s, 2)}


def time_sorts(table) -> dict[str, float]:
    """ms to order every row by each sort key (the slower direction)."""
    from core.faces.curation import SORT_KEYS, select

    out = {}
    for key in SORT_KEYS:
        worst = 0.0
        for descending in (False, True):
            t0 = time.perf_counter()
            table.order_by(key, descending, select(table))
            worst = max(worst, time.perf_counter() - t0)
        out[key] = round(1000 * worst, 2)
    return out


def first_page(project) -> float:
    """Seconds to open what the faces screen opens and decode its first page of thumbnails."""
    from core.faces.curation import face_table, select
    from core.faces.thumbnails import ThumbCache

    t0 = time.perf_counter()
    table = face_table(project, "a")
    names = table.names
    rows = table.order_by("order", False, select(table))[:PAGE]
    cache = ThumbCache(project, "a")
    thumbs = [cache.get(names[int(r)]) for r in rows]
    dt = time.perf_counter() - t0
    assert all(t is not None for t in thumbs), "the first page has thumbnails missing"
    return dt


def run(faces: int = 10_000, clips: list[str] | None = None, workers: int | None = None,
        screen: Callable[[Path, str, str], tuple[float, float]] | None = None, keep: str | None = None,
        progress: Callable[[str], None] | None = None) -> dict:
    """Make the side and time the faces screen's work on it; {"faces": {...}} (module notes).
    `screen(home, project_name, side) -> (wall, CPU) seconds`: the TUI's own first-page timer; `keep`: build
    the side in this folder and leave it there (default: a temporary folder, removed)."""
    from core.faces.curation import face_table
    from core.faces.thumbnails import ThumbCache, _workers

    say = progress or (lambda _m: None)
    with tempfile.TemporaryDirectory(prefix="facepair-bench-faces-") as d:
        tmp = Path(keep).expanduser() if keep else Path(d)
        tmp.mkdir(parents=True, exist_ok=True)
        clip_paths = [Path(c) for c in clips] if clips else default_clips(tmp)
        project, out = make_side(tmp / "home", faces, clip_paths, say)
        say(f"faces: scoring {out['faces']:,} faces…")
        t0 = time.perf_counter()
        table = face_table(project, "a")
        out["scores_first_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        table = face_table(project, "a")
        out["scores_cached_s"] = round(time.perf_counter() - t0, 3)
        say("faces: building the thumbnail cache…")
        cpu0 = time.process_time()
        built = ThumbCache(project, "a").build(workers=workers)
        cpu_ms = 1000 * (time.process_time() - cpu0) / max(1, built.built)
        out.update(thumbs_faces_per_s=round(built.faces_per_s or 0.0, 1), thumbs_s=round(built.seconds, 2),
                   workers=workers or _workers(), thumbs_unreadable=len(built.unreadable),
                   thumbs_cpu_ms_per_face=round(cpu_ms, 3))
        out["thumbs_check_s"] = round(ThumbCache(project, "a").build().seconds, 3)
        cpu0 = time.process_time()
        out["first_page_s"] = round(first_page(project), 3)
        out["first_page_cpu_s"] = round(time.process_time() - cpu0, 3)
        if screen is not None:
            say("faces: opening the faces screen…")
            wall, cpu = screen(tmp / "home", project.name, "a")
            out.update(screen_first_page_s=round(wall, 3), screen_first_page_cpu_s=round(cpu, 3))
        out["sort_ms"] = time_sorts(table)
        out["sort_max_ms"] = max(out["sort_ms"].values())
    return {"faces": out}


if __name__ == "__main__":
    import sys

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, progress=print), indent=2))
