"""Tracing a function to an ONNX file with jax2onnx, with facepair's provenance in its metadata.

Why jax2onnx: it converts the jaxpr of the JAX function itself (every primitive the models use:
convolutions, dot_general, reshapes and transposes of the pixel shuffle, sigmoid, leaky ReLU), so
the exported graph is the trained model, not a re-implementation; ONNX Runtime then checks it
(core/export/verify.py). The jax2tf + tf2onnx route would add TensorFlow (GBs) for the same result.

The optional dependencies live in the `export` extra (`pip install -e '.[export]'`; `make test`
installs it); `require()` names it when they are missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import FacepairError
from core.system.atomic import atomic_write_bytes

EXTRA_HINT = "install the export extra: .venv/bin/pip install -e '.[export]' (onnx, onnxruntime, jax2onnx)"
OPSET = 17  # ONNX Runtime 1.14+ (DeepFaceLive ships 1.15+) runs every op of the graph at this opset


class ExportUnavailable(FacepairError):
    """onnx, onnxruntime or jax2onnx is not installed."""


def require(*modules: str) -> None:
    """Import check for the export extra: a clear error naming it instead of an ImportError."""
    import importlib

    for name in modules or ("onnx", "onnxruntime", "jax2onnx"):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ExportUnavailable(f"exporting needs the Python package {name!r}, which is not installed: "
                                    f"{EXTRA_HINT}") from e


def trace(fn, resolution: int, input_names, output_names, name: str):
    """The ONNX ModelProto of `fn` over (N, R, R, 3) float32 inputs, N dynamic."""
    require("onnx", "jax2onnx")
    import logging

    from jax2onnx import to_onnx

    from core.jaxmodels import fastconv

    # onnx_ir warns about the shapes of constants it leaves untyped; the graph is checked after.
    logging.getLogger("onnx_ir").setLevel(logging.ERROR)
    with fastconv.plain_convs():
        return to_onnx(fn, [("N", resolution, resolution, 3)], model_name=name, opset=OPSET,
                       input_names=list(input_names), output_names=list(output_names))


def set_metadata(model, meta: dict) -> None:
    """Store `meta` in the model's metadata_props: one string per key (dicts and lists as JSON)."""
    del model.metadata_props[:]
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key = str(k)
        entry.value = v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file, {key: value} (values as stored: strings)."""
    require("onnx")
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


def write(model, path: Path) -> int:
    """Check the graph and write it as one file (weights inline: a .dfm must be one file), atomically.
    Returns the size in bytes."""
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise FacepairError(f"the exported graph is not valid ONNX ({e}); please report this") from e
    data = model.SerializeToString()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return len(data)
