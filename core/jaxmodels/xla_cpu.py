"""XLA:CPU settings facepair applies before JAX starts its CPU backend.

Why: in jaxlib 0.10, XLA:CPU hands convolutions to YNNPACK, which runs many of this model's
convolutions on one core (measured on 2 cores: a 32->64 5x5 stride-2 conv at 32x32, batch 32,
10.8 ms on one core; with YNNPACK's convolutions turned off XLA runs its own multithreaded (Eigen)
kernel: 5.7 ms on both). Matrix products stay with YNNPACK, which uses every core.
docs/performance.md has the measurements.

The flag only exists in the jaxlib versions listed in TESTED (an unknown flag in XLA_FLAGS aborts
the process), is only read when the backend starts, and is left alone when the user already chose
a YNNPACK fusion setting or set FACEPAIR_XLA_CPU=default.

Nothing sets it at import: `configure()` is called where work that uses JAX starts (the job runner
before it runs a kind, `facepair bench`), and it is idempotent, so calling it twice is harmless.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

CONV_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
_FLAG_NAME = "xla_cpu_experimental_ynn_fusion_type"
TESTED = ("0.10.",)  # jaxlib versions whose XLA knows the flag (checked on 0.10.2)

_state: dict[str, bool] = {}


def _jaxlib_version() -> str:
    try:
        return metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return ""


def _backends_started() -> bool:
    if "jax" not in sys.modules:  # nothing can have started a backend (and no need to import jax)
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except Exception:  # a private API: if it moves, assume the worst (too late to set flags)
        return True


def configure(environ=os.environ) -> bool:
    """Add CONV_FLAG to XLA_FLAGS when it can still take effect. Returns whether XLA's own
    convolutions are in effect on the CPU (what `eigen_convs()` reports afterwards)."""
    flags = environ.get("XLA_FLAGS", "")
    if _FLAG_NAME in flags:  # the user's (or a parent process's) choice
        on = CONV_FLAG in flags.split()
    elif environ.get("FACEPAIR_XLA_CPU", "").strip().lower() == "default":
        on = False
    elif not _jaxlib_version().startswith(TESTED):
        on = False
    elif _backends_started():
        on = False
    else:
        environ["XLA_FLAGS"] = (flags + " " + CONV_FLAG).strip()
        on = True
    _state["eigen"] = on
    return on


def eigen_convs() -> bool:
    """Whether XLA:CPU runs convolutions with its own kernels (see `configure`)."""
    if "eigen" not in _state:
        configure()
    return _state["eigen"]
