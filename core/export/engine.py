"""`convert --engine onnx`: swapping with ONNX Runtime on the exported graph instead of JAX.

`load_onnx_swapper(project)` exports the newest checkpoint's encoder + decoder (the plain `onnx`
layout of core/export/graph.py) once per checkpoint step and decoder, into
`model/onnx/stepN-DIGEST-to-SIDE.onnx`, and returns a swapper with the same interface as JAX's
(core.train.model_io.Swapper): `swap(faces uint8 (N, R, R, 3), direction) -> (rgb, mask)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import FacepairError
from core.export import graph, onnx_file

CACHE = "onnx"


def weights_digest(loaded) -> str:
    """A short digest of the weights (the first KB of every tensor): a model retrained from
    scratch to the same step gets new cache files, not the old model's graphs."""
    import hashlib

    import jax

    h = hashlib.blake2b(digest_size=6)
    for leaf in jax.tree.leaves(loaded.params):
        h.update(np.asarray(leaf).reshape(-1)[:256].tobytes())
    return h.hexdigest()


def cache_path(project, loaded, side: str) -> Path:
    return project.model_dir / CACHE / f"step{loaded.step}-{weights_digest(loaded)}-to-{side}.onnx"


def ensure_graph(loaded, side: str, path: Path, meta: dict, coverage: float, center) -> Path:
    """`path`, the ONNX file of the encoder + decoder `side`, exported there when missing."""
    if path.is_file():
        return path
    direction = f"{'b' if side == 'a' else 'a'}-to-{side}"
    fn = graph.build(loaded, "onnx", direction, False, coverage, center)
    model = onnx_file.trace(fn, loaded.preset.resolution, *graph.io_names("onnx"), name="facepair")
    onnx_file.set_metadata(model, meta)
    model.producer_name = "facepair"
    onnx_file.write(model, path)
    return path


def _drop_older(path: Path) -> None:
    """Another checkpoint's cached graphs are no longer used."""
    keep = path.name.rsplit("-to-", 1)[0]
    for old in path.parent.glob("step*-to-*.onnx"):
        if old.name.rsplit("-to-", 1)[0] != keep:
            old.unlink(missing_ok=True)


@dataclass
class OnnxSwapper:
    """A trained model run by ONNX Runtime; the interface of core.train.model_io.Swapper."""

    preset: str
    resolution: int
    step: int
    has_mask: bool
    coverage: float | None
    batch: int
    _open: object = None  # decoder side → a new session (the graph exported on first use)
    _sessions: dict = field(default_factory=dict)  # decoder side → session
    engine: str = "onnx"

    def swap(self, faces, direction: str = "a-to-b"):
        if direction not in graph.DIRECTIONS:
            raise FacepairError(f"unknown swap direction {direction!r}; use one of {', '.join(graph.DIRECTIONS)}")
        faces = np.asarray(faces)
        r = self.resolution
        if faces.ndim != 4 or faces.shape[1:] != (r, r, 3) or faces.dtype != np.uint8:
            raise FacepairError(f"the {self.preset} model swaps uint8 {r}×{r} RGB faces; got {faces.dtype} "
                                f"{faces.shape}")
        side = graph.DIRECTIONS[direction][1]
        if side not in self._sessions:
            self._sessions[side] = self._open(side)
        sess = self._sessions[side]
        rgbs, masks = [], []
        for i in range(0, len(faces), self.batch):
            x = faces[i:i + self.batch].astype(np.float32) / np.float32(255.0)
            rgb, mask = sess.run(None, {graph.ONNX_INPUTS[0]: x})
            rgbs.append(rgb)
            masks.append(mask)
        rgb = np.concatenate(rgbs) if rgbs else np.zeros((0, r, r, 3), np.float32)
        mask = np.concatenate(masks) if masks else np.zeros((0, r, r), np.float32)
        return rgb, (mask if self.has_mask else None)


def make_swapper(loaded, where, meta_for, batch: int = 64, coverage: float = 2.0,
                 center=(0.490127, 0.62)) -> OnnxSwapper:
    """An ONNX Runtime swapper for a loaded model: decoder `side`'s graph lives at `where(side)`
    (exported on first use, with metadata `meta_for(side)`)."""
    from core.export import verify

    onnx_file.require()

    def open_side(side: str):
        return verify.session(ensure_graph(loaded, side, where(side), meta_for(side), coverage, center))

    p = loaded.preset
    return OnnxSwapper(preset=p.name, resolution=p.resolution, step=loaded.step, has_mask=p.mask,
                       coverage=p.coverage, batch=batch, _open=open_side)


def load_onnx_swapper(project, batch: int = 64, warn=None) -> OnnxSwapper:
    """The newest checkpoint as an ONNX Runtime swapper (graphs cached in model/onnx/ per step)."""
    import jax.numpy as jnp

    from core.export.job import geometry, provenance
    from core.train import model_io

    onnx_file.require()
    loaded = model_io.load_model(project, warn=warn, dtype=jnp.float32)
    coverage, center = geometry(project, loaded, "a-to-b")

    def where(side: str) -> Path:
        path = cache_path(project, loaded, side)
        _drop_older(path)
        return path

    def meta_for(side: str) -> dict:
        direction = f"{'b' if side == 'a' else 'a'}-to-{side}"
        return provenance(project, loaded, "onnx", direction, False, coverage, center)

    return make_swapper(loaded, where, meta_for, batch, coverage, center)
