"""Commands on face-pair projects: new, add-source, remove-source, list, show, delete."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from core.project import projects
from core.studio.overview import summarize, summarize_all
from core.studio.removal import delete_project
from tui.cli.commands.common import console, home, open_project, print_json


def register(sub, parents) -> None:
    p = sub.add_parser("new", parents=parents, help="create a face-pair project (consent required)")
    p.add_argument("name")
    p.add_argument("--a", required=True, metavar="LABEL", help="who person A is (the footage)")
    p.add_argument("--b", required=True, metavar="LABEL", help="who person B is (the face put on A)")
    p.add_argument("--consent", metavar="TEXT",
                   help="the consent statement: who agreed to what (required; no consent, no project)")
    p.add_argument("--consent-by", action="append", metavar="NAME",
                   help="who gave consent (repeatable; default: both labels)")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("add-source", parents=parents, help="record videos, images or folders for side a or b")
    p.add_argument("name")
    p.add_argument("side", choices=["a", "b"])
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--copy", action="store_true", help="copy the files into the project instead of linking by path")
    p.set_defaults(func=cmd_add_source)

    p = sub.add_parser("remove-source", parents=parents, help="forget a source (by id or path)")
    p.add_argument("name")
    p.add_argument("side", choices=["a", "b"])
    p.add_argument("source", metavar="ID_OR_PATH")
    p.set_defaults(func=cmd_remove_source)

    p = sub.add_parser("list", parents=parents, help="list projects")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=parents, help="show one project: labels, sources, faces, training, jobs")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("delete", parents=parents, help="delete a project and everything in its folder")
    p.add_argument("name")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask")
    p.set_defaults(func=cmd_delete)


def cmd_new(args: argparse.Namespace) -> int:
    p = projects.create_project(home(args), args.name, args.a, args.b, args.consent, args.consent_by)
    console.print(f"created project [bold]{escape(p.name)}[/] at {p.root}")
    console.print(f"  A = {escape(p.label_a)}, B = {escape(p.label_b)}; consent recorded from {escape(', '.join(p.consent.by))}")
    console.print(f"  next: facepair add-source {p.name} a VIDEO…   facepair add-source {p.name} b PHOTOS…")
    return 0


def cmd_add_source(args: argparse.Namespace) -> int:
    p = open_project(args)
    added = projects.add_sources(p, args.side, args.paths, copy=args.copy)
    for s in added:
        console.print(f"added {s.kind} [bold]{escape(s.path)}[/] to side {s.side} ({escape(p.label(s.side))}) as {s.id}")
    skipped = len(args.paths) - len(added)
    if skipped:
        console.print(f"{skipped} path(s) were already sources of side {args.side}")
    return 0


def cmd_remove_source(args: argparse.Namespace) -> int:
    p = open_project(args)
    s = projects.remove_source(p, args.side, args.source)
    console.print(f"removed {escape(s.path)} from side {s.side}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = summarize_all(home(args))
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        console.print(f"no projects in {home(args)} — create one with `facepair new NAME --a LABEL --b LABEL --consent TEXT`")
        return 0
    table = Table("project", "A", "B", "faces A", "faces B", "step", "loss A", "loss B", "jobs")
    for r in rows:
        if "error" in r:
            table.add_row(escape(r["name"]), f"[red]{escape(r['error'])}[/]", "", "", "", "", "", "", "")
            continue
        t = r["training"]
        table.add_row(
            escape(r["name"]), escape(r["labels"]["a"]), escape(r["labels"]["b"]), str(r["faces"]["a"]),
            str(r["faces"]["b"]), str(t["step"] or 0), _fmt(t["loss_a"]), _fmt(t["loss_b"]),
            ", ".join(f"{j['kind']}" for j in r["running_jobs"]) or "-",
        )
    console.print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    s = summarize(open_project(args))
    if args.json:
        print_json(s)
        return 0
    console.print(f"[bold]{escape(s['name'])}[/]  ({s['path']})")
    console.print(f"  A: {escape(s['labels']['a'])}    B: {escape(s['labels']['b'])}")
    c = s["consent"]
    console.print(f"  consent: {escape(c['statement'])!r} — {escape(', '.join(c['by']))}, recorded {c['recorded']} by {escape(c['recorded_by'])}")
    for side in ("a", "b"):
        trashed = f" ({s['trash'][side]} in the trash)" if s["trash"][side] else ""
        console.print(f"  sources {side}: {len(s['sources'][side])}, faces {side}: {s['faces'][side]}{trashed}")
        for src in s["sources"][side]:
            console.print(f"    {src['id']}  {src['kind']:6}  {escape(src['path'])}  {_state(src)}")
    t = s["training"]
    console.print(f"  training: preset {t['preset'] or '-'}, step {t['step'] or 0}, loss A {_fmt(t['loss_a'])}, loss B {_fmt(t['loss_b'])}")
    if s["running_jobs"]:
        for j in s["running_jobs"]:
            console.print(f"  running: {j['id']} ({j['kind']}, pid {j['pid']})")
    else:
        console.print("  running: none")
    if s["last_output"]:
        console.print(f"  last output: {escape(s['last_output'])}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from core.errors import ProjectError

    unreadable = None
    try:
        p = open_project(args)
        name, root, question = p.name, p.root, f"Delete project {p.name!r} and everything in {p.root}?"
    except ProjectError as e:
        root = projects.project_root(home(args), args.name)
        if not (root / projects.PROJECT_FILE).is_file():
            raise
        why = projects.not_a_project_folder(root)
        if why:
            raise ProjectError(f"{e}\nnot deleting {root}: {why}") from e
        unreadable, name = str(e), projects.normalize_name(args.name)
        console.print(f"[yellow]{escape(unreadable)}[/]")
        question = f"The project {name!r} cannot be read. Delete its folder {root} and everything in it anyway?"
    if not args.yes:
        try:
            answer = input(f"{question} [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            console.print("not deleted")
            return 1
    delete_project(home(args), name, unreadable_ok=unreadable is not None)
    console.print(f"deleted {root}")
    return 0


STATE_STYLE = {"extracted": "green", "not extracted": "dim", "incomplete": "yellow", "partial": "yellow",
               "changed": "bold red", "missing": "bold red"}


def _state(src: dict) -> str:
    """A source's state (core.faces.sources.source_state), with the words when it needs action."""
    state = src.get("state")
    if not state:
        return ""
    style = STATE_STYLE.get(state, "")
    text = f"[{style}]{escape(state)}[/]" if style else escape(state)
    if state in ("changed", "partial", "incomplete", "missing"):
        text += f": {escape(src.get('detail') or '')}"
    return text


def _fmt(x) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "-"
