"""`facepair plan`: the memory and speed of a preset's training step, from XLA's analyses of the real
step compiled for the target precision, not run (core/train/plan.py). Imports neither dlib nor Textual."""

from __future__ import annotations

import argparse

from tui.cli.commands.common import console, err_console, print_json


def register(sub, parents) -> None:
    p = sub.add_parser(
        "plan", parents=parents,
        help="memory and speed of a preset's training step (compiled, not run), for this or another device",
        description="Compile the training step as `facepair train` builds it (bf16 compute, fp32 weights, as on a "
                    "GPU, unless --dtype fp32) without running it, and print from XLA's memory and cost analyses: "
                    "weights, optimizer state, the face set on the device, temporaries (activations), the total, "
                    "FLOPs per step, and the step time and images/s an H100 or H200 would give at the stated "
                    "utilisation of its datasheet bf16 peak (docs/training.md).")
    p.add_argument("--preset", nargs="+", metavar="P", default=None, help="presets to plan (default: all but tiny)")
    p.add_argument("--batch", nargs="+", type=int, metavar="N", default=None,
                   help="faces per side per step (default: each preset's own)")
    p.add_argument("--faces", type=int, default=1000, metavar="N", help="faces per side on the device (default 1000)")
    p.add_argument("--memory", default=None, metavar="SIZE",
                   help="the device memory to plan for, e.g. 80GB (default: this device's, when it reports one)")
    p.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16", help="compute precision (default bf16)")
    p.add_argument("--utilisation", type=float, default=None, metavar="U",
                   help="share of the peak the step reaches (default 0.4)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=cmd_plan)


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
    if args.faces < 1 or any(b < 1 for b in args.batch or []):
        raise FacepairError("--faces and --batch must be at least 1")
    presets = [get_preset(n) for n in (args.preset or [n for n in PRESETS if n != "tiny"])]
    rows = []
    for preset in presets:
        for batch in args.batch or [preset.batch]:
            err_console.print(f"compiling {preset.name} at batch {batch}…", highlight=False)
            rows.append(planner.plan(preset, batch, faces=args.faces, memory=memory,
                                     dtype="bfloat16" if args.dtype == "bf16" else "float32",
                                     utilisation=args.utilisation or planner.UTILISATION))
    if args.json:
        print_json({"rows": rows, "peaks": planner.PEAKS, "peak_source": planner.PEAK_SOURCE,
                    "margin": planner.MARGIN})
        return 0
    console.print(planner.markdown(rows), markup=False, highlight=False, soft_wrap=True)
    return 0
