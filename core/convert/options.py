"""The `convert` and `preview` job kinds' declared options (core/convert/pipeline.py `run_job`,
`run_preview_job`).

`facepair convert`, `facepair preview`, the TUI's convert screen and the check before a job
starts all come from `CONVERT` and `PREVIEW` (core.jobs.spec). Light: no numpy, OpenCV or JAX.
"""

from __future__ import annotations

from core.jobs.spec import KindSpec, Option

DIRECTIONS = ("a-to-b", "b-to-a", "a-to-a", "b-to-b")  # the last two: self-swap controls (bench quality)
OFFERED_DIRECTIONS = ("a-to-b", "b-to-a")
BATCH_DEFAULT = 32  # core.convert.pipeline.DEFAULT_BATCH
CRF_DEFAULT = 18

# How the new face is merged: the same for a conversion and a preview.
MERGE = (
    Option("swap", str, "a-to-b", choices=DIRECTIONS, offered=OFFERED_DIRECTIONS,
           help="a-to-b (default): the input shows A, B's face is put on; b-to-a: the reverse", label="Direction"),
    Option("faces", str, "match", choices=("all", "match"),
           help="match (default): swap only faces of the replaced side's person (dlib descriptor), "
                "leave other people alone; all: swap every face", label="Faces (match: only A's)"),
    Option("mask", str, "hull", choices=("hull", "learned"),
           help="hull (default): the landmarks' convex hull; learned: the model's own mask (presets with one)",
           label="Mask"),
    Option("erode", int, None, min=0, metavar="PX",
           help="shrink the mask by PX frame pixels (default: 3%% of the face width)", label="Erode mask px (empty: auto)"),
    Option("blur", int, None, min=0, metavar="PX",
           help="feather the mask edge over PX frame pixels (default: 8%% of the face width)",
           label="Blur mask px (empty: auto)"),
    Option("color", str, "reinhard", choices=("none", "reinhard", "histogram"),
           help="colour-match the new face to the original: reinhard (default, L*a*b* mean/std), histogram, or none",
           label="Colour match"),
    Option("blend", str, "feather", choices=("feather", "poisson"),
           help="feather (default): soft alpha blend; poisson: seamless clone, then feathered", label="Blend"),
    Option("sharpen", float, 0.0, min=0, metavar="X",
           help="unsharp-mask amount for the new face (default {default})", label="Sharpen (empty: {default})"),
    Option("label", bool, True, negate="--no-label",
           help="burn the visible 'AI-generated' mark into the corner (default: on). The metadata label "
                "is always written, and a C2PA manifest for .mp4, .m4v, .mov, .png and .jpg outputs "
                "(C2PA cannot sign .mkv: an .mkv with --no-label is labelled by its metadata alone)",
           label="Visible label (metadata: always)"),
    Option("detector", str, "hog", choices=("hog", "cnn"),
           help="face detector for inputs that were not extracted (default {default})", label="Face detector"),
)
TIME = (str, float)  # seconds or [h:]mm:ss

CONVERT = KindSpec(
    kind="convert",
    options=(
        Option("input", str, None, nullable=False, short="-i", required=True, metavar="VIDEO|IMAGE|FOLDER"),
        Option("output", str, None, short="-o", metavar="PATH",
               help="where to write (default: PROJECT/output/INPUT_a-to-b.mp4, .png/.jpg, or a folder, "
                    "replaced by a re-run); .mkv gets no C2PA manifest",
               label="Output (empty: output/)", form_kind="path"),
        Option("overwrite", bool, False,
               help="replace an existing --output without asking (never a source of the project)"),
        Option("start", TIME, None, metavar="T", help="start time in the video (seconds or [h:]mm:ss)",
               label="Start (12.5 or m:ss)"),
        Option("end", TIME, None, metavar="T", help="end time in the video (seconds or [h:]mm:ss)",
               label="End (12.5 or m:ss)"),
        *MERGE,
        Option("crf", int, CRF_DEFAULT, min=0, max=51, metavar="N",
               out_of_range="must be {min}–{max} (lower is better quality), not {value}",
               help="H.264 quality, {min}–{max}, lower is better (default {default})",
               label="Quality, CRF (empty: {default})"),
        Option("batch", int, BATCH_DEFAULT, min=1, metavar="N", help="faces per model call (default {default})",
               label="Faces per batch (empty: default)"),
        Option("workers", int, None, min=1, flag=None, label="Worker processes (empty: auto)"),
        Option("engine", str, "jax", choices=("jax", "onnx"),
               help="jax (default): the model in JAX; onnx: its exported graph in ONNX Runtime (the `export` "
                    "extra; core/export/engine.py)", label="Engine"),
        Option("weights", str, "ema", choices=("ema", "raw"),
               help="ema (default): the moving average of the model's weights when it keeps one (train "
                    "--ema-decay), else its weights; raw: the weights of its last step"),
    ),
)

PREVIEW = KindSpec(
    kind="preview",
    options=(
        Option("input", str, None, nullable=False, short="-i", required=True, metavar="VIDEO|IMAGE"),
        Option("frame", int, 0, min=0, metavar="N", help="frame index (default {default})"),
        Option("output", str, None, short="-o", metavar="PNG", help="where to write (default: the job's folder)"),
        *MERGE,
    ),
)
