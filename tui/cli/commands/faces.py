"""`facepair faces`: list a side's faces with their scores, remove faces into the side's trash, and
restore them (core.faces.curation).

    facepair faces [list] NAME SIDE [--sort KEY] [--desc] [--where EXPR] [--limit N] [--trash] [--json]
    facepair faces remove NAME SIDE (--where EXPR | --ids NAME…) [--dry-run] [--json]
    facepair faces restore NAME SIDE [--ids NAME… | --last | --all] [--json]

One parser takes the three forms (argparse cannot put a default sub-command before positional
arguments): the first word is the action when it is `list`, `remove` or `restore`.
"""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from core.errors import FacepairError
from tui.cli.commands.common import console, open_project, print_json

ACTIONS = ("list", "remove", "restore")
COLUMNS = ("blur", "yaw", "pitch", "identity", "size", "align", "change")  # the table's; --json has every score
USAGE = ("facepair faces [list] NAME SIDE [--sort KEY] [--desc] [--where EXPR] [--limit N] [--trash] [--json]\n"
         "       facepair faces remove NAME SIDE (--where EXPR | --ids NAME...) [--dry-run] [--json]\n"
         "       facepair faces restore NAME SIDE [--ids NAME... | --last | --all] [--json]")


def register(sub, parents) -> None:
    from core.faces.curation import SORT_KEYS, WHERE_KEYS

    keys = "; ".join(f"{k}: {v}" for k, v in SORT_KEYS.items())
    p = sub.add_parser(
        "faces", parents=parents, usage=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="list a side's faces with their scores; remove faces to the trash and restore them",
        description="List, remove and restore a side's faces. Removed faces move to faces/SIDE/.trash/ "
                    "(never deleted): training leaves them out from its next start or resume and "
                    "`convert --faces match` does not swap them.",
        epilog=f"sort keys — {keys}.\n\n--where: conditions KEY OP VALUE joined by ',' or 'and'; OP one of "
               f"< <= > >= = !=; |KEY| for the absolute value; keys: {', '.join(WHERE_KEYS)}. "
               f"E.g. --where 'blur<30'  --where '|yaw|>40, identity>0.55'  --where 'source=ID'.")
    p.add_argument("words", nargs="+", metavar="[ACTION] NAME SIDE",
                   help="list (the default), remove or restore; the project; the side (a or b)")
    p.add_argument("--sort", metavar="KEY", help="sort by this score (default order)")
    p.add_argument("--desc", action="store_true", help="largest first")
    p.add_argument("--where", metavar="EXPR", help="only faces that meet these conditions (e.g. 'blur<30')")
    p.add_argument("--limit", type=int, metavar="N", help="list at most N faces")
    p.add_argument("--trash", action="store_true", help="list the faces in the trash instead")
    p.add_argument("--ids", nargs="+", metavar="NAME", help="faces by name (SOURCEID_FRAME_FACE, .png optional)")
    p.add_argument("--dry-run", action="store_true", help="remove: say which faces would go, move nothing")
    p.add_argument("--last", action="store_true", help="restore: the last removal batch (the default)")
    p.add_argument("--all", action="store_true", help="restore: everything in the trash")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_faces)


def parse_words(words: list[str]) -> tuple[str, str, str]:
    """(action, project, side) from the positional words."""
    action = words[0] if words[0] in ACTIONS else "list"
    rest = words[1:] if words[0] in ACTIONS else words
    if len(rest) != 2:
        raise FacepairError(f"facepair faces {action} takes a project and a side (a or b), got "
                            f"{' '.join(rest) or 'nothing'}: e.g. `facepair faces {action} NAME a`")
    return action, rest[0], rest[1]


def _refuse(args: argparse.Namespace, action: str, flags: tuple[str, ...]) -> None:
    given = [f"--{f.replace('_', '-')}" for f in flags if getattr(args, f) not in (None, False)]
    if given:
        raise FacepairError(f"{', '.join(given)} do{'es' if len(given) == 1 else ''} not go with "
                            f"`facepair faces {action}`")


def cmd_faces(args: argparse.Namespace) -> int:
    action, name, side = parse_words(args.words)
    project = open_project(args, name)
    if action == "list":
        _refuse(args, action, ("ids", "dry_run", "last", "all"))
        return cmd_list(args, project, side)
    if action == "remove":
        _refuse(args, action, ("sort", "desc", "limit", "trash", "last", "all"))
        return cmd_remove(args, project, side)
    _refuse(args, action, ("sort", "where", "desc", "limit", "trash", "dry_run"))
    return cmd_restore(args, project, side)


def cmd_list(args: argparse.Namespace, project, side: str) -> int:
    from core.faces import curation

    sort = curation.check_sort(args.sort or "order")
    where = curation.parse_where(args.where)
    table = curation.face_table(project, side)
    rows = table.order_by(sort, args.desc, curation.select(table, where, removed=bool(args.trash)))
    total = len(rows)
    if args.limit is not None:
        rows = rows[: max(0, args.limit)]
    recs = curation.records(project, table, rows)
    if args.json:
        print_json({"project": project.name, "side": side, "sort": sort, "descending": args.desc,
                    "where": str(where), "trash": bool(args.trash), "matching": total,
                    "identity_reference": table.reference, "faces": [r.as_dict() for r in recs]})
        return 0
    if not recs:
        what = "in the trash" if args.trash else "kept"
        console.print(f"no faces {what} on side {side} of {project.name!r}"
                      f"{f' meet {escape(str(where))}' if where.clauses else ''}")
        return 0
    t = Table(box=None, pad_edge=False, padding=(0, 0, 0, 2), header_style="bold", title=f"side {side}: {len(recs)} of {total} faces "
              f"{'in the trash ' if args.trash else ''}by {sort}{' (desc)' if args.desc else ''}")
    t.add_column("face", no_wrap=True)
    for k in COLUMNS:
        t.add_column(k, justify="right", no_wrap=True)
    for r in recs:
        t.add_row(escape(r.name.removesuffix(".png")), *(_fmt(r.scores[k], k) for k in COLUMNS))
    console.print(t)
    return 0


def _fmt(x, key: str) -> str:
    if x is None:
        return "-"
    if key in ("identity", "align", "change"):
        return f"{x:.3f}"
    return f"{x:.1f}" if key != "size" else f"{x:.0f}"


def _training_note(project) -> str | None:
    from core.studio.overview import training_job

    job = training_job(project)
    if job is None:
        return None
    return (f"training job {job} is running: it keeps training on the faces it loaded and says so at its next "
            f"checkpoint; stop and resume it (`facepair train {project.name}`) to leave these out")


def cmd_remove(args: argparse.Namespace, project, side: str) -> int:
    from core.faces import curation

    if bool(args.where) == bool(args.ids):
        raise FacepairError("facepair faces remove needs --where EXPR or --ids NAME… (one of them): "
                            "e.g. --where 'blur<30'")
    table = curation.face_table(project, side)
    if args.where:
        rows = curation.select(table, curation.parse_where(args.where), removed=False)
        names = [table.names[i] for i in rows]
    else:
        names = curation.crop_names(args.ids)
    if args.dry_run:
        return _show_dry_run(args, project, side, names)
    result = curation.remove_faces(project, side, names, table=table) if names else None
    note = _training_note(project) if result and result.removed else None
    if args.json:
        out = result.as_dict() if result else curation.Removal(side, None, [], [], "").as_dict()
        print_json({**out, "project": project.name, "training_job_note": note})
        return 0
    if result is None or not result.removed:
        console.print(f"nothing to remove on side {side}" + (f" ({len(result.already)} already in the trash)"
                                                             if result and result.already else ""))
        return 0
    console.print(f"removed {len(result.removed)} face(s) of side {side} to {escape(result.trash)} "
                  f"(batch {result.batch}); undo: facepair faces restore {project.name} {side} --last")
    if result.already:
        console.print(f"{len(result.already)} were in the trash already")
    if note:
        console.print(f"[yellow]{escape(note)}[/]")
    return 0


def _show_dry_run(args, project, side: str, names: list[str]) -> int:
    if args.json:
        print_json({"project": project.name, "side": side, "would_remove": names})
        return 0
    console.print(f"would remove {len(names)} face(s) of side {side}"
                  + (": " + escape(", ".join(names[:10])) + (" …" if len(names) > 10 else "") if names else ""))
    return 0


def cmd_restore(args: argparse.Namespace, project, side: str) -> int:
    from core.faces import curation

    result = curation.restore_faces(project, side, names=args.ids, last=args.last, everything=args.all)
    if args.json:
        print_json({**result.as_dict(), "project": project.name})
        return 0
    if result.restored:
        console.print(f"restored {len(result.restored)} face(s) of side {side} to faces/{side}")
    else:
        console.print(f"nothing to restore on side {side}")
    for n, why in result.skipped.items():
        console.print(f"  [yellow]left {escape(n)}[/]: {escape(why)}")
    return 0
