"""`facepair missing`: the frames of each extracted source with no face, and where a track was lost
(core.extract.missing), so `facepair extract NAME --redo-missing` can re-detect them.

    facepair missing NAME [--side a|b] [--json]
"""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from tui.cli.commands.common import console, open_project, print_json


def register(sub, parents) -> None:
    p = sub.add_parser(
        "missing", parents=parents,
        help="list the frames of extracted sources with no face or a lost track",
        description="For each extracted source: runs of frames with no kept face (with why: a face too small, "
                    "blurry, another person's, removed) and, for videos, frames where a face's track was lost. "
                    "`facepair extract NAME --redo-missing [--detector cnn] [--min-face PX]` re-detects them.")
    p.add_argument("name", help="project name")
    p.add_argument("--side", choices=("a", "b"), help="one side only (default: both)")
    p.add_argument("--json", action="store_true", help="print the sources and their runs as JSON")
    p.set_defaults(func=cmd_missing)


def cmd_missing(args: argparse.Namespace) -> int:
    from core.extract.redo import listing

    project = open_project(args)
    sides = (args.side,) if args.side else ("a", "b")
    sources = listing(project, sides)
    if args.json:
        print_json({"project": project.name, "sides": list(sides), "sources": sources})
        return 0
    if not sources:
        console.print(f"project {project.name!r} has no sources on side {'/'.join(sides)}")
        return 0
    for s in sources:
        _show(s)
    if any(s.get("to_redo") for s in sources):
        console.print(f"re-detect them: facepair extract {project.name}"
                      f"{f' --side {args.side}' if args.side else ''} --redo-missing [--detector cnn] [--min-face PX]")
    return 0


def _show(s: dict) -> None:
    title = f"side {s['side']}: {escape(s['path'])}"
    if s["state"] != "listed":
        console.print(f"{title}: [yellow]{escape(s['why'])}[/]")
        return
    if not s["no_face"] and not s["lost"]:
        console.print(f"{title}: every one of its {s['frames']} processed frames has a face")
        return
    t = Table(box=None, pad_edge=False, padding=(0, 0, 0, 2), header_style="bold",
              title=f"{title}: {s['no_face_frames']} of {s['frames']} frames without a face"
                    + (f", {s['lost_frames']} with a lost track" if s["kind"] == "video" else ""),
              title_justify="left")
    for col, right in (("what", False), ("frames", True), ("count", True), ("time", True), ("why", False)):
        t.add_column(col, justify="right" if right else "left", no_wrap=True)
    for what, runs in (("no face", s["no_face"]), ("lost track", s["lost"])):
        for r in runs:
            t.add_row(what, _frames(r), str(r["count"]), _times(r), escape(_why(r)))
    console.print(t)


def _frames(r: dict) -> str:
    return str(r["start"]) if r["start"] == r["end"] else f"{r['start']}–{r['end']}"


def _times(r: dict) -> str:
    if r["start_s"] is None:
        return "-"
    return f"{r['start_s']:.2f} s" if r["start"] == r["end"] else f"{r['start_s']:.2f}–{r['end_s']:.2f} s"


def _why(r: dict) -> str:
    parts = [f"{n} {k}" for k, n in r["dropped"].items()]
    if "tracks" in r:
        parts.insert(0, f"track {r['tracks'][0]} → {r['tracks'][1]}")
    if r.get("names"):
        parts.append(", ".join(r["names"][:3]) + (" …" if len(r["names"]) > 3 else ""))
    return "; ".join(parts) or "nothing detected"
