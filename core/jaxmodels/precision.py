"""The compute precision of training and inference: bf16 with fp32 weights on accelerators, fp32 on a
CPU — unless `$FACEPAIR_COMPUTE_DTYPE` (`bfloat16` or `float32`) says otherwise, so the bf16 path every
GPU run takes can be exercised on a CPU (tests/test_bf16.py) and a GPU run can be checked in fp32.

Pure (no JAX import): the device line and the step both ask it, at call time.
"""

from __future__ import annotations

import os

ENV = "FACEPAIR_COMPUTE_DTYPE"
NAMES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float32": "float32", "fp32": "float32"}


def compute_dtype_name(platform: str) -> str:
    """'bfloat16' or 'float32' for a device platform ('cpu', 'gpu', 'tpu')."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced:
        if forced not in NAMES:
            raise ValueError(f"${ENV} is {forced!r}: use bfloat16 or float32")
        return NAMES[forced]
    return "float32" if platform == "cpu" else "bfloat16"


def short_name(platform: str) -> str:
    """'bf16' or 'fp32', as the device line says it."""
    return "bf16" if compute_dtype_name(platform) == "bfloat16" else "fp32"
