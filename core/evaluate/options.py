"""The `eval` job kind's declared options (core/evaluate/job.py `run_job`).

`facepair eval` and the check before the job starts come from `SPEC` (core.jobs.spec). Light:
no numpy or dlib.
"""

from __future__ import annotations

from core.jobs.spec import KindSpec, Option

FRAMES_DEFAULT = 300  # core.evaluate.job.DEFAULT_FRAMES
IDENTITY_FACES_DEFAULT = 24  # core.evaluate.job.DEFAULT_IDENTITY_FACES

SPEC = KindSpec(
    kind="eval",
    options=(
        Option("input", str, None, nullable=False, short="-i", required=True, metavar="VIDEO",
               help="the converted video (or the original: its newest conversion in this project is measured)"),
        Option("original", str, None, metavar="VIDEO",
               help="the video it was converted from (default: found from the project's convert job)"),
        Option("frames", int, FRAMES_DEFAULT, min=1, metavar="N", help="compare the first N frames (default {default})"),
        Option("identity_faces", int, IDENTITY_FACES_DEFAULT, min=1, metavar="K",
               help="frames (spread over the clip) whose faces get dlib descriptors "
                    "(default {default}; ~0.3 s each on a CPU)"),
        Option("control", str, None, flag=None),  # the self-swap control video (bench quality)
    ),
)
