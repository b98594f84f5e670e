"""`facepair export NAME [--format dfm|onnx] [--swap a-to-b|b-to-a] [-o PATH] [--fp16]`: the trained
model as a DeepFaceLive .dfm or a plain ONNX file, checked with ONNX Runtime (the `export` job,
core/export/job.py); what was written and how to use it, or JSON with --json."""

from __future__ import annotations

import argparse

from rich.markup import escape

from core.export.options import SPEC
from core.jobs import spec
from tui.cli.commands.common import add_detach, console, open_project, run_job


def register(sub, parents) -> None:
    p = sub.add_parser(
        "export", parents=parents,
        help="export the trained model: DeepFaceLive's .dfm or ONNX, checked with ONNX Runtime",
        description="Write the newest checkpoint as a .dfm (DeepFaceLive, FaceFusion's deep_swapper) or a plain "
                    ".onnx file, traced from the JAX model by jax2onnx. The file carries facepair's provenance "
                    "(project, consent, time, that its outputs are synthetic) in its ONNX metadata, and is "
                    "compared with the JAX model in ONNX Runtime on the project's own faces before it is kept. "
                    "Needs the `export` extra (onnx, onnxruntime, jax2onnx). README: 'Use your model in "
                    "DeepFaceLive or FaceFusion'.",
    )
    p.add_argument("name", help="project")
    spec.add_arguments(p, SPEC)
    p.add_argument("--json", action="store_true", help="print the result as JSON (progress goes to stderr)")
    add_detach(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from core.export.onnx_file import require

    project = open_project(args)
    require()  # said before any job starts
    return run_job(args, project, "export", spec.from_namespace(SPEC, args), show=print_result)


def print_result(result: dict) -> None:
    worst = max(result["max_abs_diff"].values(), default=None)
    console.print(f"wrote [bold]{escape(result['path'])}[/] ({result['bytes'] / 1e6:.1f} MB): {result['format']}, "
                  f"{result['swap']}, {result['preset']} step {result['step']}, {result['resolution']} px"
                  f"{', fp16' if result['fp16'] else ''}")
    if worst is not None:
        console.print(f"ONNX Runtime vs the JAX model on {result['faces_checked']} faces: max difference "
                      f"{worst:.1e} (tolerance {result['tolerance']:g})")
    s = result["deepfacelive_aligner"]
    console.print(f"DeepFaceLive face aligner: align mode {s['align_mode']}, face coverage {s['face_coverage']}, "
                  f"x offset {s['x_offset']:.2f}, y offset {s['y_offset']:.2f} (facepair's crop; README: 'Use your "
                  f"model in DeepFaceLive or FaceFusion')")
