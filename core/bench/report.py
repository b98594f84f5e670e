"""The frame of `facepair bench [train|extract|convert|faces|all]`: the machine header and each stage's section.

Each stage has a module `core/bench/<stage>.py` with `run(**opts) -> dict` returning its JSON
section (`{"train": [...]}`, `{"extract": {...}}`, `{"convert": {...}}`, `{"faces": {...}}`). They are imported only
when asked for, so `facepair bench train` needs neither dlib nor Textual; a stage whose module is
not part of this build is reported as missing, not as a traceback.

`machine()` describes where the figures were taken (CPU model, cores, memory, accelerators,
library versions), so a JSON result can be compared with another run's.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
from importlib import metadata

STAGES = ("train", "extract", "convert", "faces", "scale")
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "opencv-python-headless",
             "dlib-bin", "torch")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def versions() -> dict:
    """Installed versions of the libraries that matter for speed (absent ones left out)."""
    from core import __version__

    out = {"facepair": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def devices() -> list[str]:
    """JAX's devices, e.g. ['cpu'] or ['gpu:NVIDIA H200'] (imports jax)."""
    try:
        import jax

        return [f"{d.platform}:{d.device_kind}" if getattr(d, "device_kind", "") and d.device_kind != d.platform
                else d.platform for d in jax.devices()]
    except Exception as e:  # noqa: BLE001 - the header still says what it can
        return [f"unavailable ({type(e).__name__}: {e})"]


def machine(with_devices: bool = True) -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    info = {
        "host": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "load_average": [round(x, 2) for x in load] if load else None,
        "versions": versions(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if with_devices:
        info["devices"] = devices()
    return info


def stage_module(stage: str):
    """The stage's benchmark module, or None when it is not part of this build."""
    name = f"core.bench.{stage}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise


def run(stages=STAGES, options: dict | None = None, progress=None) -> dict:
    """Run the named stages' benchmarks: {"machine": {...}, STAGE: section..., "missing": [...]}.

    `options`: {stage: {keyword: value}} passed to that stage's `run`.
    """
    from core.jaxmodels import xla_cpu

    xla_cpu.configure()  # before machine() lists JAX's devices, which starts its backend
    options = options or {}
    out = {"machine": machine()}
    missing = []
    for stage in stages:
        if stage not in STAGES:
            raise ValueError(f"unknown benchmark {stage!r}; choose from {', '.join(STAGES)}")
        mod = stage_module(stage)
        if mod is None:
            missing.append(stage)
            continue
        kw = dict(options.get(stage, {}))
        if progress is not None and stage in ("train", "faces", "scale"):
            kw.setdefault("progress", progress)
        section = mod.run(**kw)
        out.update(section)
    if missing:
        out["missing"] = missing
    # The load at the end too: a figure taken while the machine was busy says so.
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out["machine"]["load_average_end"] = [round(x, 2) for x in load] if load else None
    return out


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1e9:
            return f"{v:.3g}"
        if abs(v) >= 100:
            return f"{v:,.1f}"
        return f"{v:.3g}"
    if isinstance(v, list | tuple):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return str(v)


def si(v: float | None, unit: str = "FLOP/s") -> str:
    if not v:
        return "—"
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if abs(v) >= scale:
            return f"{v / scale:.2f} {prefix}{unit}"
    return f"{v:.0f} {unit}"


def header_lines(m: dict) -> list[str]:
    v = m.get("versions", {})
    libs = "  ".join(f"{k} {v[k]}" for k in v if k not in ("facepair", "python"))
    lines = [
        f"machine  {m.get('host', '')}  {m.get('os', '')}",
        f"cpu      {m.get('cpu', '')}  ({m.get('cores')} cores, {_fmt(m.get('memory_gib'))} GiB)"
        f"  load {_fmt(m.get('load_average'))}",
        f"devices  {', '.join(m.get('devices', []))}",
        f"versions facepair {v.get('facepair', '?')}  python {v.get('python', '?')}  {libs}",
    ]
    if m.get("xla_flags"):
        lines.append(f"XLA_FLAGS {m['xla_flags']}")
    return lines


TRAIN_COLUMNS = (
    ("preset", "preset", str),
    ("batch", "batch/side", str),
    ("images_per_s", "images/s", _fmt),
    ("step_ms", "step ms", _fmt),
    ("compile_s", "compile s", _fmt),
    ("flops_per_s", "achieved", si),
    ("mfu", "MFU", lambda v: "—" if v is None else f"{100 * v:.1f} %"),
    ("device", "device", str),
    ("conv", "conv", str),
)


def train_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    cols = list(TRAIN_COLUMNS)
    if any("torch_images_per_s" in r for r in rows):
        ratio = lambda v: "—" if v is None else f"{v:.2f}×"  # noqa: E731
        cols += [("torch_images_per_s", "PyTorch img/s", _fmt), ("torch_layout", "torch layout", str),
                 ("vs_torch", "JAX/PyTorch", ratio), ("vs_torch_plain", "vs model-only", ratio)]
    head = [c[1] for c in cols]
    body = [[fmt(r.get(key)) if r.get(key) is not None else "—" for key, _, fmt in cols] for r in rows]
    return head, body


SUMMARY_HEAD = ["benchmark", "facepair", "reference", "ratio", "target", "met"]


def summary_rows(result: dict) -> list[list[str]]:
    """One row per comparison the issues name, with its target: the table the README shows."""
    rows = []
    for r in result.get("train", []):
        ref = r.get("torch_images_per_s")
        vs = r.get("vs_torch")
        cpu = r.get("device") == "cpu"  # the target is for the CPU; a GPU reports MFU
        rows.append([f"train {r['preset']} ({r.get('device', '?')}, batch {r.get('batch')}/side)",
                     f"{_fmt(r.get('images_per_s'))} images/s"
                     + ("" if r.get("mfu") is None else f", MFU {100 * r['mfu']:.1f} %"),
                     f"PyTorch eager {_fmt(ref)} images/s (same augmentation)"
                     + (f"; {_fmt(r['torch_plain_images_per_s'])} model-only" if r.get("torch_plain_images_per_s")
                        else "") if ref else "— (--torch)",
                     "—" if vs is None else f"{vs:.2f}×" + (f" ({r['vs_torch_plain']:.2f}× model-only)"
                                                           if r.get("vs_torch_plain") else ""),
                     "≥ 1× PyTorch" if cpu else "—",
                     "—" if vs is None or not cpu else ("yes" if vs >= 1 else "no")])
    e = result.get("extract")
    if e:
        ok = (e.get("ratio") or 0) >= 3 and (e.get("recall") or 0) >= 0.95 and (e.get("landmark_px") or 99) <= 2
        rows.append([f"extract ({e.get('frames')} frames)",
                     f"{_fmt(e.get('frames_per_s'))} frames/s, faces in {e.get('faces')}",
                     f"naive loop {_fmt(e.get('naive_frames_per_s'))} frames/s, faces in {e.get('naive_faces')}",
                     f"{_fmt(e.get('ratio'))}×; recall {_fmt(100 * (e.get('recall') or 0))} %; "
                     f"landmarks {_fmt(e.get('landmark_px'))} px",
                     "≥ 3×, ≥ 95 %, ≤ 2 px", "yes" if ok else "no"])
    c = result.get("convert")
    if c:
        fps = c.get("frames_per_s") or 0
        rows.append([f"convert ({c.get('preset')}, {c.get('width')}×{c.get('height')}, {c.get('frames')} frames)",
                     f"{_fmt(fps)} frames/s end to end (decode {_fmt(c.get('decode_fps'))}, inference "
                     f"{_fmt(c.get('infer_fps'))}, merge {_fmt(c.get('merge_fps'))}, encode {_fmt(c.get('encode_fps'))})",
                     "; ".join(x for x in (
                         f"finding the faces beforehand: {_fmt(c['find_fps'])} frames/s" if c.get("find_fps") else "",
                         f"end to end finding them on the fly: {_fmt(c['frames_per_s_detect'])} frames/s"
                         if c.get("frames_per_s_detect") else "") if x) or "—",
                     "—", "≥ 30 frames/s", "yes" if fps >= 30 else "no"])
        for name, e in (c.get("engines") or {}).items():
            if name != "jax":
                efps = e.get("frames_per_s") or 0
                rows.append([f"convert, {name} engine", f"{_fmt(efps)} frames/s end to end (inference "
                             f"{_fmt(e.get('infer_fps'))}; {_fmt(e.get('infer_faces_per_s'))} faces/s)",
                             f"jax engine: {_fmt(fps)} frames/s (inference {_fmt(c.get('infer_fps'))}; "
                             f"{_fmt(c.get('infer_faces_per_s'))} faces/s)", "—", "≥ 30 frames/s",
                             "yes" if efps >= 30 else "no"])
    f = result.get("faces")
    if f:
        rows.append(faces_row(f))
    rows += scale_rows(result.get("scale"))
    return rows


def scale_rows(sc: dict | None) -> list[list[str]]:
    """The long-input comparisons (core/bench/scale.py): memory as the input grows, the store at
    100k frames, the face set at 10k faces."""
    if not sc:
        return []
    rows = []
    runs = sc.get("runs") or []
    for stage in ("extract", "convert"):
        have = [r for r in runs if stage in r]
        if len(have) >= 2:
            short, long_ = have[0], have[-1]
            a, b = short[stage]["peak_rss_mib"], long_[stage]["peak_rss_mib"]
            ok = b <= 1.1 * a
            rows.append([f"{stage} {long_[stage]['frames']:,} frames of 1080p ({long_['minutes']:g} min at {sc['fps']:g} fps)",
                         f"peak RSS {_fmt(b)} MiB (all processes), {_fmt(long_[stage]['frames_per_s'])} frames/s",
                         f"{short[stage]['frames']:,} frames: {_fmt(a)} MiB, {_fmt(short[stage]['frames_per_s'])} frames/s",
                         f"{b / a:.2f}×" if a else "—", "flat (≤ 1.1×)", "yes" if ok else "no"])
    k = sc.get("resume")
    if k:
        rows.append([f"resume after a kill at {k['done_at_kill']} frames done", f"{k['resumed_new_frames']} frames "
                     f"processed again of the {k['frames_after'] - k['stored_at_kill']} not stored",
                     f"{k['stored_at_kill']} frames kept from the killed run", "—", "nothing redone, store complete",
                     "yes" if k["complete"] and k["killed_state"] != "succeeded"  # a kill that landed
                     and k["resumed_new_frames"] == k["frames_after"] - k["stored_at_kill"] else "no"])
    st = sc.get("store")
    if st:
        worst = max(st["written_open_lookup_s"], st["compacted_open_lookup_s"])
        rows.append([f"alignments store, {st['frames']:,} frames", f"open + lookup {_fmt(st['compacted_open_lookup_s'])} s "
                     f"compacted, {_fmt(st['written_open_lookup_s'])} s as written ({st['written_parts']} parts)",
                     f"{st['unmerged_parts']:,} unmerged parts: {_fmt(st['unmerged_open_lookup_s'])} s", "—", "< 1 s",
                     "yes" if worst < 1 and st.get("lookup_ok") else "no"])
    fs = sc.get("faceset")
    if fs:
        rows.append([f"face set, {fs['loaded']:,} faces of {fs['size']} px", f"load_faceset {_fmt(fs['cached_load_s'])} s "
                     "(packed cache)", f"from the PNGs: {_fmt(fs['png_load_s'])} s; building the cache "
                     f"{_fmt(fs['build_load_s'])} s", "—", "< 30 s", "yes" if fs["cached_load_s"] < 30 else "no"])
    return rows


def faces_row(f: dict) -> list[str]:
    """The summary row of `bench faces` (core/bench/faces.py) against the issue's three targets."""
    fps, page, sort = f.get("thumbs_faces_per_s") or 0, f.get("screen_first_page_s", f.get("first_page_s")), \
        f.get("sort_max_ms")
    ok = fps >= 500 and page is not None and page < 1 and sort is not None and sort < 1000
    return [f"faces ({f.get('faces'):,} faces, {f.get('real_faces')} real, copied)",
            f"thumbnails {_fmt(fps)} faces/s; first page {_fmt(page)} s; re-sort ≤ {_fmt(sort)} ms",
            "—", "—", "≥ 500 faces/s, < 1 s, < 1 s", "yes" if ok else "no"]


def text_report(result: dict) -> str:
    """A plain-text rendering (the CLI uses rich tables; this is for logs and tests)."""
    lines = header_lines(result.get("machine", {}))
    summary = summary_rows(result)
    if summary:
        widths = [max(len(h), *(len(r[i]) for r in summary)) for i, h in enumerate(SUMMARY_HEAD)]
        lines += ["", "summary"]
        lines.append("  ".join(h.ljust(w) for h, w in zip(SUMMARY_HEAD, widths, strict=True)))
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in summary]
    if "train" in result:
        head, body = train_table(result["train"])
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
        lines += ["", "train"]
        lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    for stage in ("extract", "convert", "faces"):
        if stage in result:
            lines += ["", stage] + [f"  {k}: {_fmt(v)}" for k, v in result[stage].items()]
    if "scale" in result:
        from core.bench import scale

        lines += ["", "scale"] + [f"  {x}" for x in scale.lines(result["scale"])]
    for stage in result.get("missing", []):
        lines += ["", f"{stage}: not part of this build (core/bench/{stage}.py is missing)"]
    return "\n".join(lines)


if __name__ == "__main__":
    import json

    print(json.dumps(run(sys.argv[1:] or ["train"]), indent=2, default=str))
