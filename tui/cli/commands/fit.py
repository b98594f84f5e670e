"""`facepair fit`: rank candidate footage by how well B's face fits the people in it.

Runs the `fit` job (core/fit/job.py) and prints its ranking as a table, or as JSON with --json.
The candidates and options are checked before the job starts.
"""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from core.fit.options import SPEC
from core.jobs import spec
from tui.cli.commands.common import add_detach, console, open_project, run_job


def register(sub, parents) -> None:
    p = sub.add_parser(
        "fit", parents=parents,
        help="rank candidate footage by how well B's face fits it (head shape, proportions, poses)",
        description="A swap replaces the inner face and keeps the footage's jaw line, head shape and "
                    "proportions. For each candidate (a video, an image or a folder) this samples frames, "
                    "finds the people in it and scores how well B's face shape fits each one (0–100), names "
                    "the features that differ most, and says what share of the candidate's head poses B's "
                    "faces cover. Without --candidates it ranks the project's side-A sources (the project "
                    "screen of the TUI shows that ranking).")
    p.add_argument("name", help="project")
    spec.add_arguments(p, SPEC)
    p.add_argument("--json", action="store_true", help="print the ranking as JSON (progress goes to stderr)")
    add_detach(p)
    p.set_defaults(func=cmd_fit)


def cmd_fit(args: argparse.Namespace) -> int:
    from core.fit import job as fit_job

    project = open_project(args)
    paths, _ = fit_job.check_candidates(project, args.candidates)
    job_args = {**spec.from_namespace(SPEC, args), "candidates": paths if args.candidates else None}
    return run_job(args, project, "fit", job_args, show=print_ranking)


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.0f}%"


def _range(r) -> str:
    return "—" if not r else f"{r[0]:+.0f}…{r[1]:+.0f}°"


def ranking_table(rows: list[dict]) -> Table:
    """The ranking as a rich table (also used by the TUI if it wants the same look)."""
    t = Table(show_lines=False, header_style="bold")
    t.add_column("#", justify="right")
    t.add_column("candidate", overflow="fold")
    t.add_column("person", justify="right")
    t.add_column("faces", justify="right")
    t.add_column("score", justify="right")
    t.add_column("differs most")
    t.add_column("poses covered", justify="right")
    t.add_column("yaw", justify="right")
    for r in rows:
        if r.get("score") is None:
            t.add_row("", escape(r["name"]), "—", str(r.get("faces") or 0), "—",
                      f"[yellow]{escape(r.get('message') or r['status'])}[/]", "—", "—")
            continue
        score = r["score"]
        style = "green" if score >= 70 else "yellow" if score >= 40 else "red"
        t.add_row(str(r["rank"]), escape(r["name"]), str(r["person"]), str(r["faces"]),
                  f"[{style}]{score:.0f}[/]", escape("; ".join(d["words"] for d in r["differences"])),
                  _pct(r["coverage"]), _range(r.get("yaw")))
    return t


def print_ranking(result: dict) -> None:
    b = result["b"]
    where = "faces/b" if b["origin"] == "extraction" else "B's sources"
    console.print(f"B = [bold]{escape(b['label'])}[/]: {b['faces']} faces from {where}, "
                  f"yaw {_range(b['yaw'])}, pitch {_range(b['pitch'])}")
    console.print(ranking_table(result["rows"]))
    console.print("[dim]score 0–100: how close the candidate's face shape (jaw line, width-to-height, "
                  "proportions) is to B's; differences describe the candidate relative to B. "
                  "poses covered: share of the candidate's head poses that B's faces show.[/]")
    for r in result["rows"]:
        for n in r.get("notes") or []:
            console.print(f"[dim]{escape(r['name'])}"
                          f"{' person ' + str(r['person']) if r.get('person') else ''}: {escape(n)}[/]")
