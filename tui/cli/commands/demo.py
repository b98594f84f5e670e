"""`facepair demo` (what `make demo` runs): build the sample project from two public-domain stills,
extract, train, convert, and say where the output is (core/demo/job.py)."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from core.demo.options import SPEC
from core.jobs import spec
from tui.cli.commands.common import add_detach, console, err_console, home, run_job


def register(sub, parents) -> None:
    from core.demo import job as demo

    p = sub.add_parser(
        "demo", parents=parents,
        help="the demo: a sample project from two public-domain portraits, trained and converted end to end",
        description="Build project 'demo' from scikit-image's astronaut portrait (A) and matplotlib's portrait of "
                    "Grace Hopper (B), both public domain: synthesize moving clips from the stills, extract the "
                    "faces, train a model for a fixed budget and convert a clip of A with B's face (audio kept, "
                    "labelled as synthetic). Each stage is a job the TUI can watch. Running it again resumes: "
                    "the model trains the budget again from its checkpoint.",
    )
    p.add_argument("--name", default=demo.NAME, help=f"project name (default {demo.NAME})")
    spec.add_arguments(p, SPEC, ["preset"])
    budget = p.add_mutually_exclusive_group()
    spec.add_arguments(budget, SPEC, ["steps", "minutes"])
    spec.add_arguments(p, SPEC, ["frames", "target_frames", "batch"])
    p.add_argument("--fresh", action="store_true", help="delete the demo project and build it again")
    p.add_argument("--json", action="store_true", help="print the result as JSON (progress goes to stderr)")
    add_detach(p)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from core.demo import job as demo
    from core.jaxmodels.presets import get_preset

    get_preset(args.preset)
    out = err_console if args.json else console
    project, note = demo.prepare(home(args), args.name, fresh=args.fresh)
    out.print(escape(note))
    return run_job(args, project, "demo", spec.from_namespace(SPEC, args, drop_none=True),
                   show=print_summary, hint=f" (or open the TUI: {escape(demo.open_hint(project.home))})")


STAGES = ("clips", "extract", "train", "convert")


def _s(seconds) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    return f"{seconds:.1f} s" if seconds < 90 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def _loss(x) -> str:
    return "–" if x is None else f"{x:.4f}"


def print_summary(r: dict) -> None:
    m, c = r["model"], r["convert"]
    labels = ["visible mark" if c.get("visible_label") else None, "metadata" if c.get("metadata_label") else None,
              "C2PA" if c.get("c2pa") else None]
    t = Table(show_header=False, box=None, padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(overflow="fold")  # paths are folded, never cut: they are there to be copied
    t.add_row("output", f"{escape(str(r['output']))}\n{c.get('frames')} frames, {c.get('faces_swapped')} faces swapped; "
                        f"labelled as synthetic: {', '.join(x for x in labels if x)}")
    if r.get("frame"):
        t.add_row("frame", f"{escape(r['frame'])}  (original | converted)")
    t.add_row("stages", "  ·  ".join(f"{k} {_s(r['seconds'][k])}" for k in STAGES if k in r["seconds"]) + f"  (total {_s(r['total_seconds'])})")
    t.add_row("faces", f"A {r['faces']['a']}, B {r['faces']['b']} extracted")
    resumed = f", resumed from step {r['resumed_from_step']}" if r.get("resumed_from_step") else ""
    t.add_row("model", f"{m['preset']}, step {m['step']} ({m['steps_trained']} this run, budget {m['budget']}{resumed}); "
                       f"final loss A {_loss(m['loss_a'])}, B {_loss(m['loss_b'])}"
                       + (f"; {escape(str(m['device']))}" if m.get("device") else ""))
    t.add_row("open", f"{escape(r['tui'])}   (the TUI; project '{escape(r['project'])}')")
    t.add_row("measure", f"facepair{_home_flag(r)} eval {escape(r['project'])} --input {escape(str(r['output']))}")
    console.print("[bold green]demo finished[/]")
    console.print(t)
    console.print("[dim]What this is: two still portraits (public domain), moved synthetically — not real footage. "
                  "Run `make demo` again to train longer from the checkpoint.[/]")


def _home_flag(r: dict) -> str:
    return r["tui"][len("facepair"):] if r.get("tui", "").startswith("facepair --home") else ""
