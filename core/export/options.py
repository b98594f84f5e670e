"""The `export` job kind's declared options (core/export/job.py `run_job`).

`facepair export`, the TUI's export dialog and the check before a job starts come from `SPEC`
(core.jobs.spec). Light: no numpy, JAX or onnx.
"""

from __future__ import annotations

from core.jobs.spec import KindSpec, Option

SPEC = KindSpec(
    kind="export",
    options=(
        Option("format", str, "dfm", choices=("onnx", "dfm"),
               help="dfm (default): DeepFaceLive's model file (ONNX inside, BGR in/out, its tensor names); "
                    "onnx: plain ONNX, RGB in [0, 1], outputs `swapped` and `mask`", label="Format"),
        Option("swap", str, "a-to-b", choices=("a-to-b", "b-to-a"),
               help="a-to-b (default): the model takes A's face and gives B's; b-to-a: the reverse",
               label="Direction"),
        Option("output", str, None, short="-o", metavar="PATH",
               help="where to write (default: PROJECT/exports/NAME_a-to-b_stepN.dfm or .onnx)",
               label="Output (empty: exports/)", form_kind="path"),
        Option("fp16", bool, False, help="half-precision weights and compute (half the file; GPUs run it faster)",
               label="Half precision (fp16)"),
        Option("check_faces", int, 8, min=0, metavar="N",
               help="compare ONNX Runtime's output with the JAX model's on N of the project's faces "
                    "(default {default}; 0: skip)", label="Faces to check (0: skip)"),
    ),
)
