"""Checking an exported file with ONNX Runtime: against the JAX model on real faces, and against
the contract of DeepFaceLive's loader (modelhub/DFLive/DFMModel.py: the first input's name holds
`in_face`, its shape is (N, H, W, 3) with H and W fixed, a second input can only be `morph_value`;
it runs `{'in_face:0': faces}` as float32 NHWC in [0, 1] and reads three outputs in the order
out_face_mask, out_celeb_face, out_celeb_face_mask).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import FacepairError

TOLERANCE = {False: 1e-3, True: 1e-2}  # max |ONNX − JAX| on [0, 1] outputs: fp32, fp16


class ContractError(FacepairError):
    """An exported file does not keep the contract its format promises."""


def session(path: str | Path, providers: list[str] | None = None):
    """An ONNX Runtime session on the file (CUDA first where ONNX Runtime has it, else the CPU)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # warnings about unused initializers are not the user's business
    return ort.InferenceSession(str(path), sess_options=opts, providers=wanted)


def max_differences(ours: tuple, theirs: tuple, names: tuple[str, ...]) -> dict[str, float]:
    """{output name: max |a − b|} over matching outputs."""
    if len(ours) != len(theirs):
        raise ContractError(f"the exported graph gives {len(theirs)} outputs, the model {len(ours)}")
    out = {}
    for name, a, b in zip(names, ours, theirs, strict=True):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        if a.shape != b.shape:
            raise ContractError(f"output {name}: shape {b.shape} from ONNX Runtime, {a.shape} from the model")
        out[name] = float(np.abs(a - b).max()) if a.size else 0.0
    return out


def check_dfm(path: str | Path, resolution: int) -> dict:
    """Load the file as DeepFaceLive's loader does and run it on a mid-grey batch of two faces;
    raises ContractError on any difference. Returns what was checked."""
    sess = session(path, ["CPUExecutionProvider"])
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if not inputs or "in_face" not in inputs[0].name:
        raise ContractError(f"the first input is {inputs[0].name if inputs else 'missing'}, not in_face")
    if len(inputs) > 2 or (len(inputs) == 2 and "morph_value" not in inputs[1].name):
        raise ContractError(f"inputs {[i.name for i in inputs]}: DeepFaceLive takes in_face (and morph_value)")
    h, w = inputs[0].shape[1:3]
    if (h, w) != (resolution, resolution) or inputs[0].shape[3] != 3:
        raise ContractError(f"in_face has shape {inputs[0].shape}; DeepFaceLive needs (N, {resolution}, "
                            f"{resolution}, 3) with the size fixed")
    names = [o.name for o in outputs]
    want = ["out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0"]
    if names != want:
        raise ContractError(f"outputs {names}; DeepFaceLive reads {want} in that order")
    face = np.full((2, h, w, 3), 0.5, np.float32)
    face_mask, celeb, celeb_mask = sess.run(None, {"in_face:0": face})
    for name, arr, ch in zip(want, (face_mask, celeb, celeb_mask), (1, 3, 1), strict=True):
        if arr.dtype != np.float32 or arr.shape != (2, h, w, ch):
            raise ContractError(f"{name}: {arr.dtype} {arr.shape}, not float32 (2, {h}, {w}, {ch})")
        if not (np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0):
            raise ContractError(f"{name}: values outside [0, 1] (min {arr.min()}, max {arr.max()})")
    return {"inputs": [i.name for i in inputs], "outputs": names, "resolution": [int(h), int(w)]}
