"""The `demo` job kind's declared options (core/demo/job.py `run_job`).

`facepair demo` and the check before the job starts come from `SPEC` (core.jobs.spec). Light:
no JAX or dlib. The demo runs a training job as one of its stages, so a cancel gives it the
training job's grace period and a little more to stop that stage.
"""

from __future__ import annotations

from core.jobs.spec import KindSpec, Option
from core.train.options import GRACE_S as TRAIN_GRACE_S

PRESET_DEFAULT = "lite"  # core.demo.job.DEFAULT_PRESET
MINUTES_DEFAULT = 5.0  # core.demo.job.DEFAULT_MINUTES: the budget when neither steps nor minutes is given
FRAMES_DEFAULT = 96  # per training clip (4 s at 24 fps)
TARGET_FRAMES_DEFAULT = 72  # the clip converted (3 s, with audio)
BATCH_DEFAULT = 4  # core.demo.job.TRAIN_BATCH
GRACE_S = TRAIN_GRACE_S + 10.0  # the demo cancels its training stage (which saves) before it ends

SPEC = KindSpec(
    kind="demo",
    grace_s=GRACE_S,
    options=(
        Option("preset", str, PRESET_DEFAULT, metavar="P",
               help="model preset (default {default}; tiny for a quick check)"),
        Option("steps", int, None, min=1, metavar="N", help="train N more steps"),
        Option("minutes", float, None, min=0, above_min=True, metavar="M", auto=f"{MINUTES_DEFAULT:g}",
               help="train for M minutes of the training job (default {default}, compile included)"),
        Option("frames", int, FRAMES_DEFAULT, min=1, metavar="N",
               help="frames of each training clip (default {default})"),
        Option("target_frames", int, TARGET_FRAMES_DEFAULT, min=1, metavar="N",
               help="frames of the clip converted (default {default})"),
        Option("batch", int, BATCH_DEFAULT, min=1, nullable=True, metavar="N",
               help="faces per side per training step (default {default})"),
        Option("workers", int, None, min=1, flag=None),  # extraction workers (tests)
        Option("poll", float, 0.25, min=0, above_min=True, flag=None),  # seconds between looks at a stage
    ),
)
