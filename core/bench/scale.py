"""`facepair bench scale`: long inputs in bounded memory — extraction and conversion of a long 1080p
video at growing lengths, a kill and resume, the alignments store at 100,000 frames, and a face set
of 10,000 faces loading for training.

1. Inputs: a shared talking-head clip (`talking/d18.mp4`, else a synthetic portrait) looped with
   ffmpeg (`-stream_loop`), scaled to 1080 px high and padded to 1920×1080, `minutes` long at `fps`
   frames a second, its audio looped too. What memory could grow with is the number of frames, and
   a 2-core CPU extracts 1080p at ~5-10 frames/s, so the default rate is low (10 fps: 20 minutes
   are 12,000 frames, about an hour of work here); `--fps 25` gives a real frame rate.
2. Extraction: a project per length, `facepair extract` run as a job (the runner process, its fork
   server and worker processes), memory sampled every 0.5 s (core.bench.memory: RSS and PSS summed
   over the whole tree, the runner's own RSS, and the tree's RSS in the second and the last
   quarter of the run: memory that grows with the input climbs from one to the other).
3. Kill and resume (the shortest length): the extraction again, SIGKILLed at 90 % of its frames,
   then resumed: frames the store kept, frames the resumed run processed, and whether the store
   then holds every frame once.
4. Conversion: each extracted video converted (faces from its store) in a child process running
   `core.convert.pipeline.convert` with a freshly initialised model of `preset` (these projects have no
   trained model; a trained one costs the same), sampled the same way (the child and its ffmpeg).
5. The store: a synthetic store of `store_frames` frames (one face each) as a long extraction
   leaves it (a part every 50 frames, merged as the writer goes), compacted, and as 2,000 unmerged
   parts (what a killed extraction left before the writer merged): each opened in a fresh process
   and asked for one frame's faces (seconds from open to answer; the files are in the page cache).
6. The face set: `faces` copies of real crops (the first extraction's) with their store records;
   `load_faceset` (what training runs first) timed from the PNGs alone, then building the packed
   face cache (core.faces.packed), then from the cache.

`run()` returns `{"scale": {...}}`; `python -m core.bench.scale --help` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from core.bench.memory import TreeSampler

ROOT = Path(__file__).resolve().parents[2]
SHARED_CLIP = ROOT.parent / "shared" / "data" / "talking" / "d18.mp4"
SIZE = (1920, 1080)
LENGTHS = (1.0, 5.0, 20.0)  # minutes
FPS = 10.0
STORE_FRAMES = 100_000
FACES = 10_000
KILL_AT = 0.9
KILL_SHARES = (KILL_AT, 0.75, 0.5)  # tried in turn until the kill lands before the job ends
SAMPLE_S = 0.5


def _say(progress, text: str) -> None:
    if progress is not None:
        progress(text)


# ---- inputs ------------------------------------------------------------------------------------------

def default_clip(work: Path) -> Path:
    if SHARED_CLIP.is_file():
        return SHARED_CLIP
    from core.media import synth

    return synth.portrait_clip("astronaut", work / "clip.mp4", frames=120, size=(480, 480), seed=3, audio=True,
                               fps=30.0)


def long_video(clip: Path, out: Path, minutes: float, fps: float, size: tuple[int, int] = SIZE) -> Path:
    """`clip` looped to `minutes` at `fps`, scaled to `size` (height fitted, width padded), audio kept."""
    from core.media.probe import ffmpeg_exe

    w, h = size
    cmd = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(clip),
           "-vf", f"scale=-2:{h},pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,fps={fps:g}", "-t", f"{minutes * 60:g}",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)]
    subprocess.run(cmd, check=True)
    return out


# ---- extraction ------------------------------------------------------------------------------------

def _project(home: Path, name: str, video: Path):
    from core.project.projects import add_sources, create_project

    project = create_project(home, name, "A", "B", "benchmark run on a looped test clip")
    add_sources(project, "a", [video])
    return project


def _sampled_job(project, kind: str, args: dict, stop_when=None):
    """(final job, sampler, wall seconds): a job started and sampled until it ends, or until
    `stop_when(job)` says so (the job is then SIGKILLed: its whole process group)."""
    from core.jobs import control as jobs

    t0 = time.monotonic()
    job = jobs.start_job(project, kind, args)
    sampler = TreeSampler(job.pid, SAMPLE_S).start()
    try:
        while jobs.load_job(job.dir).active:
            if stop_when is not None and stop_when(job):
                os.killpg(job.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        final = jobs.wait(job, timeout=60)
    finally:
        sampler.stop()
    return final, sampler, time.monotonic() - t0


def extract_run(project, workers: int | None) -> dict:
    """One extraction job of side a: its frames, faces, frames/s and memory."""
    from core.errors import FacepairError

    job, sampler, wall = _sampled_job(project, "extract", {"side": "a", **({"workers": workers} if workers else {})})
    if job.state != "succeeded":
        raise FacepairError(f"bench scale: the extraction job {job.id} {job.state}: {job.reason}")
    side = job.result["sides"]["a"]
    return {"frames": side["frames"], "faces": side["faces_kept"], "workers": side["workers"],
            "seconds": round(wall, 1), "frames_per_s": round(side["frames"] / wall, 2), **sampler.summary()}


def _done_frames(job) -> int:
    """Frames the job says it has done (its last progress event)."""
    from core.jobs.events import EventReader

    done = 0
    for ev in EventReader(job.events_path).read_new():
        if ev.get("type") == "progress" and isinstance(ev.get("done"), int):
            done = ev["done"]
    return done


def kill_and_resume(project, frames: int, workers: int | None) -> dict:
    """The extraction SIGKILLed at KILL_AT of its frames, then resumed (module notes, 3). Progress
    comes in the workers' chunks, so on a fast machine the last chunk can end the job before the kill
    lands: then the kill is tried again earlier (KILL_SHARES), and the share it landed at is reported."""
    from core.faces import alignments as store

    source = project.sources_of("a")[0]
    for share in KILL_SHARES:
        seen = {"done": 0}

        def at_kill(job, share=share, seen=seen) -> bool:
            seen["done"] = max(seen["done"], _done_frames(job))
            return seen["done"] >= share * frames

        args = {"side": "a", "fresh": True, **({"workers": workers} if workers else {})}
        killed, _, kill_wall = _sampled_job(project, "extract", args, stop_when=at_kill)
        if killed.state != "succeeded":
            break
    stored = len(store.load_for_source(project, source.id).frames)
    resumed, sampler, wall = _sampled_job(project, "extract", {"side": "a", **({"workers": workers} if workers else {})})
    final = store.load_for_source(project, source.id)
    side = (resumed.result or {}).get("sides", {}).get("a", {})
    return {"kill_at": share, "killed_state": killed.state, "killed_after_s": round(kill_wall, 1),
            "done_at_kill": seen["done"], "stored_at_kill": stored, "resumed_state": resumed.state,
            "resumed_new_frames": side.get("new_frames"), "resumed_seconds": round(wall, 1),
            "frames_after": len(final.frames),
            "complete": bool(len(final.frames) == frames and np.array_equal(final.frames, np.arange(frames))),
            "resume_peak_rss_mib": sampler.summary().get("peak_rss_mib")}


# ---- conversion ------------------------------------------------------------------------------------

def convert_run(project, video: Path, preset: str) -> dict:
    """The video converted in a child process (module notes, 4): frames/s and memory."""
    from core.errors import FacepairError

    out = Path(tempfile.mkdtemp(prefix="facepair-bench-scale-")) / "result.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"]
                                                     if os.environ.get("PYTHONPATH") else "")}
    cmd = [sys.executable, "-m", "core.bench.scale", "--convert-child", str(project.home), project.name,
           str(video), preset, str(out)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = TreeSampler(proc.pid, SAMPLE_S).start()
    _, err = proc.communicate()
    sampler.stop()
    wall = time.monotonic() - t0
    if proc.returncode != 0 or not out.is_file():
        raise FacepairError(f"bench scale: the conversion failed: {err.decode(errors='replace')[-2000:]}")
    r = json.loads(out.read_text())
    shutil.rmtree(out.parent, ignore_errors=True)
    return {"frames": r["frames"], "faces": r["faces_swapped"], "faces_source": r["faces_source"],
            "seconds": r["seconds"], "frames_per_s": r["fps"], "process_seconds": round(wall, 1),
            "stage_fps": r["stage_fps"], **sampler.summary()}


def _convert_child(home: str, name: str, video: str, preset: str, out: str) -> int:
    """In the child: the conversion with a fresh model; its result as JSON in `out`."""
    from core.jaxmodels import xla_cpu

    xla_cpu.configure()
    from core.bench.convert import FreshModel
    from core.convert import pipeline
    from core.project.projects import load_project

    project = load_project(Path(home), name)
    result = pipeline.convert(project, video, swapper=FreshModel(preset), overwrite=True)
    Path(out).write_text(json.dumps(result))
    Path(result["output"]).unlink(missing_ok=True)
    return 0


# ---- the store ---------------------------------------------------------------------------------------

STORE_PART_FRAMES = 50  # frames a part holds: an extraction's flush (5 s at 10 frames/s)


def synthetic_store(path: Path, frames: int, part_frames: int = STORE_PART_FRAMES, merge: bool = True,
                    seed: int = 0) -> Path:
    """A store of `frames` frames, one face each, written a part of `part_frames` at a time, through
    the writer's merging (`merge`) or as plain parts (what a writer left before it merged)."""
    from core.faces import alignments as store

    rng = np.random.default_rng(seed)
    w = store.Writer(path, {"source": {"id": "bench-000000", "path": "bench.mp4", "kind": "video", "side": "a"},
                            "settings": {"size": 256}})
    for lo in range(0, frames, part_frames):
        hi = min(frames, lo + part_frames)
        arrays = store._empty_faces(hi - lo)
        arrays["face_frame"][:] = np.arange(lo, hi)
        arrays["landmarks"][:] = arrays["landmarks_raw"][:] = rng.uniform(0, 1080, (hi - lo, 68, 2))
        arrays["matrix"][:] = rng.normal(size=(hi - lo, 2, 3))
        arrays["track"][:] = np.arange(lo, hi) // 64
        first = -lo % 64  # a descriptor every 64 frames (one per track and segment)
        rows = np.arange(first, hi - lo, 64)
        part = w._write_part({"frames": np.arange(lo, hi), **arrays, "descriptor_face": rows,
                              "descriptor": rng.normal(size=(len(rows), 128)).astype(np.float32)})
        if merge:
            w._tiers.append((0, part))
            w._merge_tail()
    return path


_LOOKUP = """
import json, sys, time
t0 = time.perf_counter()
from core.faces import alignments as store
t1 = time.perf_counter()
a = store.load(sys.argv[1])
rows = a.faces_in(int(sys.argv[2]))
lm = a.landmarks[rows[0]].copy() if len(rows) else None
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "open_lookup_s": t2 - t1, "rows": rows.tolist(), "faces": len(a),
                  "frames": len(a.frames)}))
"""


def _lookup(path: Path, frame: int) -> dict:
    """Open a store and look one frame up, in a fresh process (nothing of it loaded before)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _LOOKUP, str(path), str(frame)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


UNMERGED_PARTS = 2000


def store_section(work: Path, frames: int = STORE_FRAMES, unmerged_parts: int = UNMERGED_PARTS) -> dict:
    """Open + one lookup (module notes, 5) of the store as written, compacted, and unmerged."""
    from core.faces import alignments as store

    frame = int(frames * 0.777)
    out: dict = {"frames": frames, "lookup_frame": frame}
    t0 = time.perf_counter()
    written = synthetic_store(work / "written.fpa", frames)
    out["write_s"] = round(time.perf_counter() - t0, 2)
    out["written_parts"] = len(list(written.glob("part-*.npz")))
    r = _lookup(written, frame)
    out["written_open_lookup_s"] = round(r["open_lookup_s"], 3)
    t0 = time.perf_counter()
    store.Writer(written).compact()
    out["compact_s"] = round(time.perf_counter() - t0, 2)
    out["bytes"] = sum(p.stat().st_size for p in written.glob("part-*.npz"))
    r = _lookup(written, frame)
    out["compacted_open_lookup_s"] = round(r["open_lookup_s"], 3)
    out["lookup_ok"] = r["rows"] == [frame] and r["frames"] == frames
    unmerged = synthetic_store(work / "unmerged.fpa", frames, part_frames=max(1, -(-frames // unmerged_parts)),
                               merge=False)
    out["unmerged_parts"] = len(list(unmerged.glob("part-*.npz")))
    out["unmerged_open_lookup_s"] = round(_lookup(unmerged, frame)["open_lookup_s"], 3)
    shutil.rmtree(unmerged, ignore_errors=True)
    shutil.rmtree(written, ignore_errors=True)
    return out


# ---- the face set ------------------------------------------------------------------------------------

def make_faceset(project, donor, n: int) -> int:
    """`n` faces on side a of `project`, copies of the donor project's side-a crops, each with a store
    record copied from its original's (a synthetic source `bench-faces`): returns the crops made."""
    from core.faces import alignments as store
    from core.faces.faceset import face_files

    src = donor.sources_of("a")[0]
    a = store.load_for_source(donor, src.id)
    crops = [(f, store.parse_crop_name(f.name)) for f in face_files(donor, "a")]
    rows = [a.row(fr, fi) for _, (_, fr, fi) in crops]
    crops = [(f, r) for (f, _), r in zip(crops, rows, strict=True) if r is not None]
    sid = "bench-faces"
    path = store.store_path(project, sid)
    w = store.Writer(path, {**store.read_meta(a.path), "source": {"id": sid, "path": "bench", "kind": "video",
                                                                   "side": "a"}})
    pick = np.arange(n) % len(crops)
    rows = np.array([crops[i][1] for i in pick])
    arrays = {k: np.asarray(a.faces[k])[rows] for k in a.faces}
    arrays["face_frame"] = np.arange(n, dtype=np.int64)
    arrays["face_index"] = np.zeros(n, np.int16)
    arrays["status"] = np.zeros(n, np.int8)
    w._write_part({"frames": np.arange(n, dtype=np.int64), **arrays, "descriptor_face": np.zeros(0, np.int64),
                   "descriptor": np.zeros((0, 128), np.float32)})
    faces_dir = project.faces_dir("a")
    faces_dir.mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(pick):
        shutil.copyfile(crops[c][0], faces_dir / store.crop_name(sid, i, 0))
    return n


def faceset_section(home: Path, donor, n: int = FACES) -> dict:
    """load_faceset of `n` real crops (module notes, 6): from the PNGs alone (no cache), then
    building the packed cache, then from it."""
    import gc

    from core.faces import alignments as store
    from core.faces.faceset import load_faceset
    from core.project.projects import add_sources, create_project

    project = create_project(home, "faceset", "A", "B", "benchmark face set")
    src = donor.sources_of("a")[0]
    add_sources(project, "a", [Path(src.path)])  # its store gives the side's crop geometry
    shutil.copytree(store.store_path(donor, src.id), store.store_path(project, project.sources_of("a")[0].id))
    t0 = time.perf_counter()
    make_faceset(project, donor, n)
    out: dict = {"faces": n, "make_s": round(time.perf_counter() - t0, 1)}
    for attempt, cache in (("png", False), ("build", True), ("cached", True)):
        t0 = time.perf_counter()
        fs = load_faceset(project, "a", cache=cache)
        out[f"{attempt}_load_s"] = round(time.perf_counter() - t0, 2)
        out["loaded"], out["size"] = len(fs), fs.size
        out["images_mib"] = round(fs.images.nbytes / 2**20, 1)
        del fs
        gc.collect()
    return out


# ---- the whole benchmark ---------------------------------------------------------------------------

def run(video: str | Path | None = None, lengths=LENGTHS, fps: float = FPS, workers: int | None = None,
        preset: str = "lite", store_frames: int = STORE_FRAMES, faces: int = FACES, resume: bool = True,
        convert: bool = True, progress=None, **_ignored) -> dict:
    """Every section of the benchmark (module notes); returns {"scale": {...}}."""
    with tempfile.TemporaryDirectory(prefix="facepair-bench-scale-") as d:
        work = Path(d)
        home = work / "home"
        home.mkdir()
        clip = Path(video).expanduser().resolve() if video else default_clip(work)
        res: dict = {"clip": str(clip), "width": SIZE[0], "height": SIZE[1], "fps": fps, "runs": []}
        donor = None
        for i, minutes in enumerate(sorted(float(m) for m in lengths)):
            _say(progress, f"scale: making {minutes:g} min of 1080p at {fps:g} fps from {clip.name}…")
            path = long_video(clip, work / f"long-{minutes:g}min.mp4", minutes, fps)
            project = _project(home, f"len{i}", path)
            row: dict = {"minutes": minutes}
            _say(progress, f"scale: extracting {minutes:g} min…")
            row["extract"] = extract_run(project, workers)
            if convert:
                _say(progress, f"scale: converting {minutes:g} min…")
                row["convert"] = convert_run(project, path, preset)
            if resume and i == 0:
                _say(progress, f"scale: extracting {minutes:g} min again, killed at {KILL_AT:.0%} and resumed…")
                res["resume"] = kill_and_resume(project, row["extract"]["frames"], workers)
                _say(progress, f"scale: resume done: {json.dumps(res['resume'])}")
            res["runs"].append(row)
            _say(progress, f"scale: {minutes:g} min done: {json.dumps(row)}")
            if donor is None:
                donor = project  # its crops make the face set (its video stays: the project's source)
            else:
                shutil.rmtree(project.root, ignore_errors=True)
                path.unlink(missing_ok=True)
        if store_frames:
            _say(progress, f"scale: the alignments store at {store_frames:,} frames…")
            res["store"] = store_section(work, store_frames)
            _say(progress, f"scale: store done: {json.dumps(res['store'])}")
        if faces and donor is not None:
            _say(progress, f"scale: a face set of {faces:,} faces…")
            res["faceset"] = faceset_section(home, donor, faces)
    return {"scale": res}


def lines(section: dict) -> list[str]:
    """The section as plain lines (the CLI prints tables of the same figures)."""
    out = [f"clip {Path(section['clip']).name} looped to {section['width']}×{section['height']} at {section['fps']:g} fps"]
    for r in section["runs"]:
        e = r["extract"]
        out.append(f"{r['minutes']:g} min ({e['frames']} frames): extract {e['frames_per_s']} frames/s, peak RSS "
                   f"{e['peak_rss_mib']} MiB (PSS {e['peak_pss_mib']}, runner {e['peak_root_rss_mib']}; "
                   f"{e['rss_second_quarter_mib']} → {e['rss_last_quarter_mib']} MiB)")
        if "convert" in r:
            c = r["convert"]
            out.append(f"    convert {c['frames_per_s']} frames/s, peak RSS {c['peak_rss_mib']} MiB (PSS "
                       f"{c['peak_pss_mib']}; {c['rss_second_quarter_mib']} → {c['rss_last_quarter_mib']} MiB)")
    return out + other_lines(section)


def other_lines(section: dict) -> list[str]:
    """The resume, store and face-set figures as plain lines."""
    out = []
    if "resume" in section:
        k = section["resume"]
        out.append(f"killed at {k['done_at_kill']} frames done ({k['stored_at_kill']} stored): resumed run processed "
                   f"{k['resumed_new_frames']}, store complete: {k['complete']}")
    if "store" in section:
        s = section["store"]
        out.append(f"store of {s['frames']:,} frames: open + lookup {s['written_open_lookup_s']} s as written "
                   f"({s['written_parts']} parts), {s['compacted_open_lookup_s']} s compacted, "
                   f"{s['unmerged_open_lookup_s']} s as {s['unmerged_parts']} unmerged parts")
    if "faceset" in section:
        f = section["faceset"]
        out.append(f"face set of {f['loaded']:,} faces ({f['size']} px): load_faceset {f['png_load_s']} s from the "
                   f"PNGs, {f['build_load_s']} s building the cache, {f['cached_load_s']} s from it")
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--convert-child"]:
        return _convert_child(*argv[1:6])
    ap = argparse.ArgumentParser(prog="python -m core.bench.scale", description=__doc__.splitlines()[0])
    ap.add_argument("--video", help="the clip to loop (default: the shared talking/d18.mp4)")
    ap.add_argument("--lengths", type=float, nargs="+", default=list(LENGTHS), metavar="MIN")
    ap.add_argument("--fps", type=float, default=FPS)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--store-frames", type=int, default=STORE_FRAMES)
    ap.add_argument("--faces", type=int, default=FACES)
    ap.add_argument("--no-convert", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from core.jaxmodels import xla_cpu

    xla_cpu.configure()
    result = run(args.video, args.lengths, args.fps, args.workers, store_frames=args.store_frames, faces=args.faces,
                 convert=not args.no_convert, progress=lambda t: print(t, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=2) if args.json else "\n".join(lines(result["scale"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
