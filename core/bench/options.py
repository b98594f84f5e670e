"""The `bench-quality` job kind's declared options (core/bench/quality.py `run_job`).

The job takes one recipe (checked by `core.bench.quality.Recipe.from_json`); `facepair bench
quality` builds it from its flags, which it shares with the other benchmarks. Light: no JAX.
The job runs a training stage, so a cancel gives it the demo's grace period (the same stages).
"""

from __future__ import annotations

from core.demo.options import GRACE_S
from core.jobs.spec import KindSpec, Option

SPEC = KindSpec(
    kind="bench-quality",
    grace_s=GRACE_S,
    options=(
        Option("recipe", dict, None, nullable=False, required=True, flag=None),
        Option("poll", float, 0.25, min=0, above_min=True, flag=None),
    ),
)
