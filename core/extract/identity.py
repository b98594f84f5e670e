"""The identity filter of extraction: a face is kept when its track's dlib descriptor is within the
threshold (0.6) of a reference: the `--reference` photos, else the side's first confident face
(saved in `alignments/_reference-SIDE.json` so a resumed run uses the same one).

May import core.extract.finder, core.faces, core.media and core.system.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import FacepairError
from core.extract.finder import FoundFace
from core.faces import detect
from core.media import read as media
from core.system.atomic import atomic_write_json, read_json

AUTO_REF_MIN_SCORE = 0.5


def reference_path(project, side: str) -> Path:
    """Where the side's identity reference is kept, so a resumed run uses the same one."""
    return project.alignments_dir / f"_reference-{side}.json"


class Identity:
    """The identity filter of one side: reference descriptors and the threshold."""

    def __init__(self, project, side: str, threshold: float, reference_images: list[str] | None):
        self.path = reference_path(project, side)
        self.threshold = threshold
        self.refs: list[np.ndarray] = []
        self.origin = ""
        if reference_images:
            for p in reference_images:
                self.refs.append(reference_descriptor(p))
            self.origin = "reference photos: " + ", ".join(Path(p).name for p in reference_images)
            self._save()
        elif self.path.is_file():
            try:
                data = read_json(self.path)
                self.refs = [np.asarray(r, np.float32) for r in data["descriptors"]]
                self.origin = data.get("origin", "")
            except (ValueError, KeyError):
                self.refs = []

    def _save(self) -> None:
        atomic_write_json(self.path, {"origin": self.origin, "descriptors": [r.tolist() for r in self.refs]})

    def adopt(self, face: FoundFace, where: str) -> bool:
        """Take the side's first confident face as the reference (when none is set)."""
        if self.refs or face.track_descriptor is None or face.confidence < AUTO_REF_MIN_SCORE:
            return False
        self.refs = [np.asarray(face.track_descriptor, np.float32)]
        self.origin = f"first confident face: {where}"
        self._save()
        return True

    def keeps(self, face: FoundFace) -> bool:
        if not self.refs:
            return True
        if face.track_descriptor is None:
            return False
        return min(detect.descriptor_distance(face.track_descriptor, r) for r in self.refs) <= self.threshold


def reference_descriptor(path: str) -> np.ndarray:
    """The descriptor of the largest face in a reference photo; FacepairError when none."""
    img = media.read_image(path)
    dets = detect.detect(img, min_face=40)
    if not dets:
        raise FacepairError(f"reference photo {path}: no face found in it; choose a photo with one clear face")
    d = max(dets, key=lambda d: d.size)
    return detect.descriptor(img, detect.landmarks(img, d))
