"""`facepair plan`: the memory and speed of a preset's training step, from XLA's analyses of the real
step compiled for the target precision, not run (core/train/plan.py). Imports neither dlib nor Textual."""

from __future__ import annotations

import argparse

from tui.cli.commands.common import console, err_console, print_json


def batch_value(text: str):
    """argparse's type for --batch: a whole number, or auto (the largest that fits)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number or auto: {text!r}") from None


def register(sub, parents) -> None:
    p = sub.add_parser(
        "plan", parents=parents,
        help="memory and speed of a preset's training step (compiled, not run), for this or another device",
        description="Compile the training step as `facepair train` builds it (bf16 compute, fp32 weights, as on a "
                    "GPU, unless --dtype fp32) without running it, and print from XLA's memory and cost analyses: "
                    "weights, optimizer state, the face set on the device, temporaries (activations), the total, "
                    "FLOPs per step, and the step time and images/s an H100 or H200 would give at the stated "
                    "utilisation of its datasheet bf16 peak (docs/training.md).")
    p.add_argument("name", nargs="?", default=None,
                   help="a project: plan for its face count (faces/a and faces/b) unless --faces")
    p.add_argument("--preset", nargs="+", metavar="P", default=None, help="presets to plan (default: all but tiny)")
    p.add_argument("--batch", nargs="+", type=batch_value, metavar="N", default=None,
                   help="faces per side per step, or auto: the largest power of two that fits the memory with a "
                        "10 %% margin (default: each preset's own)")
    p.add_argument("--faces", type=int, default=None, metavar="N",
                   help="faces per side on the device (default: the project's, else 1000)")
    p.add_argument("--memory", default=None, metavar="SIZE",
                   help="the device memory to plan for, e.g. 80GB (default: this device's, when it reports one)")
    p.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16", help="compute precision (default bf16)")
    p.add_argument("--utilisation", type=float, default=None, metavar="U",
                   help="share of the peak the step reaches (default 0.4)")
    p.add_argument("--table", action="store_true",
                   help="docs/training.md's table: batches 8…256 (stopping once one does not fit 141 GB) and, "
                        "for 24, 40, 80 and 141 GB, the largest that fits")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=cmd_plan)


def project_faces(args: argparse.Namespace) -> int | None:
    """Faces per side of the named project (the mean of A and B: the same bytes), by counting files."""
    if not args.name:
        return None
    from core.faces.faceset import face_files
    from tui.cli.commands.common import open_project

    project = open_project(args)
    n = [len(face_files(project, side)) for side in ("a", "b")]
    return max(1, -(-sum(n) // 2))


def _check(args: argparse.Namespace, faces: int) -> None:
    from core.errors import FacepairError

    if faces < 1 or any(b != "auto" and b < 1 for b in args.batch or []):
        raise FacepairError("--faces and --batch must be at least 1")
    if args.table and args.batch:
        raise FacepairError("--table plans its own batches (8…256): leave out --batch")


def cmd_plan(args: argparse.Namespace) -> int:
    from core.errors import FacepairError
    from core.jaxmodels import xla_cpu

    xla_cpu.configure()
    from core.jaxmodels.presets import PRESETS, get_preset
    from core.train import plan as planner
    from core.train.devices import device_memory_bytes

    try:
        memory = planner.parse_memory(args.memory) if args.memory else device_memory_bytes()
    except ValueError as e:
        raise FacepairError(str(e)) from None
    faces = args.faces if args.faces is not None else (project_faces(args) or 1000)
    _check(args, faces)
    presets = [get_preset(n) for n in (args.preset or [n for n in PRESETS if n != "tiny"])]
    dtype = "bfloat16" if args.dtype == "bf16" else "float32"
    if args.table:
        return _table(args, presets, faces, dtype)
    rows, autos = [], []
    for preset in presets:
        for batch in args.batch or [preset.batch]:
            if batch == "auto":
                batch = _auto(preset, faces, memory, dtype, autos)
            err_console.print(f"compiling {preset.name} at batch {batch}…", highlight=False)
            rows.append(planner.plan(preset, batch, faces=faces, memory=memory, dtype=dtype,
                                     utilisation=args.utilisation or planner.UTILISATION))
    if args.json:
        print_json({"rows": rows, "auto": autos, "peaks": planner.PEAKS, "peak_source": planner.PEAK_SOURCE,
                    "margin": planner.MARGIN})
        return 0
    console.print(planner.markdown(rows), markup=False, highlight=False, soft_wrap=True)
    for a in autos:
        console.print(f"{a['preset']}: {a['why']}", markup=False, highlight=False, soft_wrap=True)
    return 0


def _auto(preset, faces: int, memory: int | None, dtype: str, autos: list) -> int:
    """The batch `--batch auto` picks for this device (or --memory), said on stderr and kept for --json."""
    import jax

    from core.train import plan as planner

    if memory is not None:
        err_console.print(f"{preset.name}: finding the largest batch that fits {planner._size(memory)}…",
                          highlight=False)
    choice = planner.auto_batch(preset, faces, memory, dtype=dtype, devices=jax.device_count())
    autos.append({"preset": preset.name, **choice})
    return choice["batch"]


def _table(args: argparse.Namespace, presets, faces: int, dtype: str) -> int:
    from core.train import plan as planner

    say = lambda m: err_console.print(m, highlight=False)  # noqa: E731
    rows = [r for p in presets for r in planner.table_rows(p, faces, dtype, progress=say)]
    if args.json:
        print_json({"rows": rows, "memories_gb": planner.TABLE_MEMORIES_GB, "margin": planner.MARGIN,
                    "peaks": planner.PEAKS, "peak_source": planner.PEAK_SOURCE})
        return 0
    console.print(planner.markdown(rows) + "\n\n" + planner.fit_markdown(rows), markup=False, highlight=False,
                  soft_wrap=True)
    return 0
