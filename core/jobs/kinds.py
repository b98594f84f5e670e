"""The job kinds facepair can run: name → "module:function", imported only when a job runs, and
name → its declared spec (core.jobs.spec), imported only when asked for.

A kind's function is `run(ctx: JobContext, **args) -> dict | None`; its return value is the job's
result. A kind's spec (`spec(kind)`) declares its options, the locks it takes and its cancel grace
period; `start_job` checks a job's arguments against it (`check_args`) and takes the project's
`model` lock for the kinds that write the model (`writes_model`), handing it to the job's process.
The spec modules are light (no numpy, JAX or dlib), so importing them costs `--help` nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from core.errors import JobError
from core.jobs.spec import DEFAULT_GRACE_S, KindSpec, validate

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
    "export": "core.export.job:run_job",
}

# Each kind's spec: "module:NAME" (imported on first use) or, for kinds registered at runtime, the spec.
SPECS: dict[str, str | KindSpec] = {
    "selftest": "core.jobs.selftest:SPEC",
    "extract": "core.extract.options:SPEC",
    "convert": "core.convert.options:CONVERT",
    "preview": "core.convert.options:PREVIEW",
    "fit": "core.fit.options:SPEC",
    "train": "core.train.options:SPEC",
    "demo": "core.demo.options:SPEC",
    "eval": "core.evaluate.options:SPEC",
    "bench-quality": "core.bench.options:SPEC",
    "export": "core.export.options:SPEC",
}

# Kinds registered at runtime without a spec that still write the model (tests).
MODEL_WRITERS: frozenset[str] = frozenset()


def register(kind: str, target: str, writes_model: bool = False, spec: str | KindSpec | None = None) -> None:
    """Register a kind at runtime (tests, plugins), with its spec when it has one."""
    global MODEL_WRITERS
    KINDS[kind] = target
    if spec is not None:
        SPECS[kind] = spec
    if writes_model:
        MODEL_WRITERS = MODEL_WRITERS | {kind}


def spec(kind: str) -> KindSpec | None:
    """The kind's declared spec, or None for a kind registered without one."""
    target = SPECS.get(kind)
    if target is None or isinstance(target, KindSpec):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def writes_model(kind: str, args: dict | None = None) -> bool:
    """Does a job of `kind` with `args` take the model lock? (`selftest` does with `model_lock`,
    so tests can exercise the lock without training.)"""
    s = spec(kind)
    return kind in MODEL_WRITERS or (s is not None and s.takes_model_lock(args))


def grace(kind: str) -> float:
    """Seconds a cancelled job of `kind` gets between SIGTERM and SIGKILL, whoever cancels it."""
    s = spec(kind)
    return DEFAULT_GRACE_S if s is None else s.grace_s


def check_args(kind: str, args: dict | None) -> dict:
    """The job's arguments checked against the kind's spec, defaults filled in (OptionError naming
    the option); a kind without a spec takes its arguments as they are."""
    s = spec(kind)
    return dict(args or {}) if s is None else validate(s, args)


def resolve(kind: str) -> Callable:
    try:
        target = KINDS[kind]
    except KeyError:
        raise JobError(f"unknown job kind {kind!r}; known: {', '.join(sorted(KINDS))}") from None
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)
