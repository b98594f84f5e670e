"""The `fit` job kind's declared options (core/fit/job.py `run_job`).

`facepair fit` and the check before the job starts come from `SPEC` (core.jobs.spec). Light:
no numpy or dlib.
"""

from __future__ import annotations

from core.jobs.spec import KindSpec, Option

FRAMES_DEFAULT = 120  # core.fit.job.FRAMES
MAX_FRAMES = 2000  # core.fit.job.MAX_FRAMES: people are grouped with (faces × faces) matrices

SPEC = KindSpec(
    kind="fit",
    options=(
        Option("candidates", list, None, short="-c", nargs="+", metavar="PATH",
               help="videos, images or folders of images to rank (default: the side-A sources)"),
        Option("frames", int, FRAMES_DEFAULT, min=1, max=MAX_FRAMES, metavar="N",
               out_of_range="{value} is out of range: sample {min}–{max} frames per candidate",
               help="frames sampled from each video, or images from each folder (default {default})"),
        Option("detector", str, "hog", choices=("hog", "cnn"),
               help="face detector (default {default}; cnn finds turned faces but is slow on a CPU)"),
        Option("use_store", bool, True, flag=None, negate="--no-store",
               help="sample extracted side-A sources again instead of reading their crops in faces/a"),
    ),
)
