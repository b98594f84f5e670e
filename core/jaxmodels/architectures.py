"""The model architectures a preset can name (`Preset.arch`), and building one.

"df": the 2018 shared encoder with a decoder per person (core/jaxmodels/models.py); "liae":
DeepFaceLab's shared encoder and decoder with inter blocks (core/jaxmodels/liae.py).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import nnx

from core.jaxmodels.liae import LIAEModel
from core.jaxmodels.models import FaceSwapModel, count_params
from core.jaxmodels.presets import ARCHS, Preset, get_preset

MODELS = {"df": FaceSwapModel, "liae": LIAEModel}
assert tuple(MODELS) == ARCHS


def make_model(p: Preset, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32) -> nnx.Module:
    return MODELS[p.arch](p, rngs=rngs, dtype=dtype, param_dtype=param_dtype)


def build_model(preset: Preset | str, seed: int = 0, dtype=jnp.float32, param_dtype=jnp.float32) -> nnx.Module:
    """The model of `preset`'s architecture with weights from `seed`."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    return make_model(p, rngs=nnx.Rngs(seed), dtype=dtype, param_dtype=param_dtype)


def with_arch(p: Preset, arch: str) -> Preset:
    """`p` built as `arch`, its parameter count that architecture's (counted on shapes only)."""
    if arch == p.arch:
        return p
    changed = dataclasses.replace(p, arch=arch)
    shapes = nnx.eval_shape(lambda: make_model(changed, rngs=nnx.Rngs(0)))
    return dataclasses.replace(changed, param_count=count_params(shapes))
