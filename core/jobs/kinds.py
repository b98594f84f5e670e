"""The job kinds facepair can run: name → "module:function", imported only when a job runs.

A kind's function is `run(ctx: JobContext, **args) -> dict | None`; its return value is the job's
result. Kinds in MODEL_WRITERS take the project's `model` lock for their whole run
(`writes_model`): `jobs.start_job` takes it and hands it to the job's process.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from core.errors import JobError

KINDS: dict[str, str] = {
    "selftest": "core.jobs.selftest:run",
    "extract": "core.extract.pipeline:run_job",
    "convert": "core.convert.pipeline:run_job",
    "preview": "core.convert.pipeline:run_preview_job",
    "fit": "core.fit.job:run_job",
    "train": "core.train.job:run_job",
    "demo": "core.demo.job:run_job",
    "eval": "core.evaluate.job:run_job",
    "bench-quality": "core.bench.quality:run_job",
}

MODEL_WRITERS = frozenset({"train"})


def register(kind: str, target: str, writes_model: bool = False) -> None:
    """Register a kind at runtime (tests, plugins)."""
    global MODEL_WRITERS
    KINDS[kind] = target
    if writes_model:
        MODEL_WRITERS = MODEL_WRITERS | {kind}


def writes_model(kind: str, args: dict | None = None) -> bool:
    """Does a job of `kind` with `args` take the model lock? (`selftest` does with `model_lock`,
    so tests can exercise the lock without training.)"""
    return kind in MODEL_WRITERS or (kind == "selftest" and bool((args or {}).get("model_lock")))


def resolve(kind: str) -> Callable:
    try:
        target = KINDS[kind]
    except KeyError:
        raise JobError(f"unknown job kind {kind!r}; known: {', '.join(sorted(KINDS))}") from None
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)
