"""facepair bench [train|extract|convert|all]: benchmarks with the machine they ran on.

Heavy imports (jax, torch, dlib) happen inside the handler, stage by stage (core/bench.py), so
`facepair bench train` runs on a machine without dlib or Textual.
"""

from __future__ import annotations

import argparse

from tui.commands.common import console, err_console, print_json

WHICH = ("train", "extract", "convert", "all")


def register(sub, parents) -> None:
    p = sub.add_parser(
        "bench", parents=parents, help="benchmark training, extraction and conversion on this machine",
        description="Benchmarks, with the machine, devices and library versions they ran on. "
                    "train: images/s of the real training step (augmentation included), step time, "
                    "compile time, achieved FLOP/s and MFU where the device's peak is known; --torch "
                    "also times a PyTorch eager implementation of the same model in the same run. "
                    "extract and convert: see docs/extraction.md and docs/conversion.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("which", nargs="?", choices=WHICH, default="all", help="what to benchmark")
    p.add_argument("--json", action="store_true", help="print the results as JSON (stdout) only")
    g = p.add_argument_group("train")
    g.add_argument("--preset", nargs="+", metavar="P", default=None,
                   help="presets to time (default: lite on a CPU, original on an accelerator); "
                        "convert uses the first")
    g.add_argument("--batch", type=int, default=16, help="faces per side per step")
    g.add_argument("--steps", type=int, default=10, help="training steps per timed run")
    g.add_argument("--repeats", type=int, default=3, help="timed runs (the median counts)")
    g.add_argument("--torch", action="store_true",
                   help="also time the PyTorch eager reference (needs the `bench` extra: torch==2.13.0)")
    g = p.add_argument_group("extract / convert")
    g.add_argument("--video", default=None, help="video to run on (default: the shared sample clip or a "
                                                  "synthetic one)")
    g.add_argument("--workers", type=int, default=None, help="extraction worker processes")
    p.set_defaults(func=cmd_bench)


def _default_presets() -> list[str]:
    import jax

    return ["lite"] if jax.default_backend() == "cpu" else ["original"]


def cmd_bench(args: argparse.Namespace) -> int:
    from core import bench
    from core.errors import FacepairError

    stages = list(bench.STAGES) if args.which == "all" else [args.which]
    if args.batch < 1 or args.steps < 1 or args.repeats < 1:
        raise FacepairError("--batch, --steps and --repeats must be at least 1")
    presets = args.preset or (_default_presets() if "train" in stages or "convert" in stages else [])
    if presets:
        from core.jaxmodels.presets import get_preset

        for p in presets:
            get_preset(p)  # a clear error for an unknown name before anything compiles
    options = {
        "train": {"presets": presets, "batch": args.batch, "steps": args.steps, "repeats": args.repeats,
                  "torch": args.torch},
        "extract": {"video": args.video, "workers": args.workers},
        "convert": {"video": args.video, **({"preset": presets[0]} if presets else {})},
    }

    def progress(msg: str) -> None:
        err_console.print(f"[dim]{msg}[/]")

    result = bench.run(stages, options, progress=progress)
    if args.json:
        print_json(result)
        return 0
    _print(result)
    return 0


def _print(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from core import bench

    # Wide tables stay whole when the output is a file or a pipe (rich assumes 80 columns there,
    # and a print's width cannot exceed its console's).
    out = console if console.is_terminal else Console(width=200, highlight=False)
    width = out.width
    for line in bench.header_lines(result["machine"]):
        out.print(line, markup=False, width=width)
    summary = bench.summary_rows(result)
    if summary:
        t = Table(title="summary: each comparison the issues name, with its target", title_justify="left")
        for h in bench.SUMMARY_HEAD:
            t.add_column(h)
        for row in summary:
            t.add_row(*row)
        out.print(t, width=width)
    if "train" in result:
        head, body = bench.train_table(result["train"])
        t = Table(title="train", title_justify="left")
        for h in head:
            t.add_column(h, justify="left" if h in ("preset", "device", "conv", "torch layout") else "right")
        for row in body:
            t.add_row(*row)
        out.print(t, width=width)
        for r in result["train"]:
            if r.get("flops_per_step"):
                out.print(f"  {r['preset']}: {bench.si(r['flops_per_step'], 'FLOP')} per step (XLA cost "
                              f"analysis), runs {', '.join(str(x) for x in r['step_ms_all'])} ms/step",
                              markup=False, width=width)
    for stage in ("extract", "convert"):
        if stage in result:
            t = Table(title=stage, title_justify="left", show_header=False)
            t.add_column("key")
            t.add_column("value", justify="right")
            for k, v in result[stage].items():
                t.add_row(k, bench._fmt(v))
            out.print(t, width=width)
    for stage in result.get("missing", []):
        out.print(f"{stage}: not part of this build (core/bench_{stage}.py is missing)", markup=False)
    m = result["machine"]
    if m.get("load_average") and m["load_average"][0] > (m.get("cores") or 1) * 0.5:
        out.print(f"note: the machine was busy (load average {bench._fmt(m['load_average'])} on "
                      f"{m.get('cores')} cores): the figures are lower than on a quiet machine", markup=False)
