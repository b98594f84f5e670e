"""The functions an export traces: the trained model as a map from an aligned face to the other
side's face and mask, in the two layouts facepair writes.

- `onnx`: input `face` (N, R, R, 3) float32 RGB in [0, 1]; outputs `swapped` (N, R, R, 3) RGB in
  [0, 1] and `mask` (N, R, R) in [0, 1]. What `convert --engine onnx` runs.
- `dfm`: DeepFaceLive's contract (its loader, modelhub/DFLive/DFMModel.py): input `in_face:0`
  (N, R, R, 3) float32 **BGR** in [0, 1]; outputs, in this order, `out_face_mask:0` (the input
  face's own mask, from its own side's decoder), `out_celeb_face:0` (the swapped face, BGR) and
  `out_celeb_face_mask:0` (the swapped face's mask), each (N, R, R, C), C = 1 for masks. In
  DeepFaceLab's words the "celeb" (src) is the face put on: B for a-to-b.

A preset without a learned mask (lite, original) gets a fixed mask instead: the mean face's hull
in the model's crop, grown and feathered (`fixed_mask`); the same for every face. Pure functions of
a loaded model (core.train.model_io.LoadedModel): no files, no exporter.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# (the input face's side, the decoder's). The self-swaps are what `convert --engine onnx` runs for
# the quality benchmark's controls; `facepair export` offers the first two.
DIRECTIONS = {"a-to-b": ("a", "b"), "b-to-a": ("b", "a"), "a-to-a": ("a", "a"), "b-to-b": ("b", "b")}
FORMATS = ("onnx", "dfm")
ONNX_INPUTS = ("face",)
ONNX_OUTPUTS = ("swapped", "mask")
DFM_INPUTS = ("in_face:0",)
DFM_OUTPUTS = ("out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0")
MASK_GROW = 0.12  # the fixed mask: the eyebrows-to-lip hull grown to reach the chin and forehead
MASK_BLUR = 0.06  # its feather, a fraction of the crop side


def fixed_mask(size: int, coverage: float, center: tuple[float, float]) -> np.ndarray:
    """(size, size) float32 in [0, 1]: the mean face's soft hull where the model has no mask."""
    from core.faces import align

    pts = align.mean_face_landmarks(size, coverage, center)
    blur = max(1, round(MASK_BLUR * size))
    return align.landmark_mask(pts, size, grow=MASK_GROW, blur=blur).astype(np.float32) / 255.0


def _model(loaded, dtype):
    """The loaded model with its parameters cast to `dtype` (fp16 exports hold fp16 weights)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from core.jaxmodels.architectures import make_model

    params = jax.tree.map(lambda a: jnp.asarray(a, dtype), loaded.params)
    abstract = nnx.eval_shape(lambda: make_model(loaded.preset, rngs=nnx.Rngs(0), dtype=dtype,
                                                 param_dtype=dtype))
    graphdef, _ = nnx.split(abstract)
    return nnx.merge(graphdef, params)


def _decode(model, z, side: str, fixed):
    """(rgb float32, mask float32 (N, R, R)) of decoder `side` on codes `z`."""
    import jax.numpy as jnp

    rgb, mask = model.decode(z, side)
    rgb = rgb.astype(jnp.float32)
    if mask is None:
        mask = jnp.broadcast_to(jnp.asarray(fixed), rgb.shape[:3])
    return rgb, mask.astype(jnp.float32)


def build(loaded, fmt: str, direction: str, fp16: bool, coverage: float,
          center: tuple[float, float]) -> Callable:
    """The traced function for `fmt` ("onnx" or "dfm") and `direction` ("a-to-b" or "b-to-a")."""
    import jax.numpy as jnp

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    own, other = DIRECTIONS[direction]
    dtype = jnp.float16 if fp16 else jnp.float32
    model = _model(loaded, dtype)
    fixed = fixed_mask(loaded.preset.resolution, coverage, center)

    if fmt == "onnx":
        def onnx_fn(face):
            z = model.encode(face.astype(dtype))
            return _decode(model, z, other, fixed)

        return onnx_fn

    def dfm_fn(in_face):
        rgb_in = in_face[..., ::-1]  # DeepFaceLive works in BGR
        z = model.encode(rgb_in.astype(dtype))
        celeb, celeb_mask = _decode(model, z, other, fixed)
        if loaded.preset.mask:
            _, face_mask = _decode(model, z, own, fixed)
        else:  # no learned mask: the fixed one, without running the own side's decoder for it
            face_mask = jnp.broadcast_to(jnp.asarray(fixed), celeb.shape[:3])
        return face_mask[..., None], celeb[..., ::-1], celeb_mask[..., None]

    return dfm_fn


def io_names(fmt: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (ONNX_INPUTS, ONNX_OUTPUTS) if fmt == "onnx" else (DFM_INPUTS, DFM_OUTPUTS)
