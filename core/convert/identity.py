"""Who to swap (`--faces match`): the replaced side's person as dlib descriptors, and the matcher
that decides, once per track in a video or per face in stills, whether a face is that person.

May import core.convert.plan, core.convert.sources, core.faces, core.media and core.system.
"""

from __future__ import annotations

import numpy as np

from core.convert.plan import ConvertError
from core.convert.sources import FaceWork
from core.errors import FacepairError

IDENTITY_THRESHOLD = 0.6  # dlib's same-person distance
REFERENCE_FACES = 12  # descriptors sampled from a side's faces to know who that side is


class IdentityMatcher:
    """Is this face the replaced side's person? dlib descriptor distance to that side's reference,
    decided once per track (a video) or per face (stills). A detection the user removed from the
    side (`facepair faces remove`: status 4 in the store) is not, whatever its track says."""

    def __init__(self, reference: np.ndarray, threshold: float = IDENTITY_THRESHOLD):
        self.reference = np.asarray(reference, np.float32)
        self.threshold = threshold
        self._tracks: dict[int, bool] = {}
        self.computed = 0

    def distance(self, descriptor: np.ndarray) -> float:
        return float(np.linalg.norm(self.reference - np.asarray(descriptor, np.float32), axis=-1).min())

    def matches(self, image: np.ndarray, face: FaceWork) -> bool:
        if face.removed:  # decided for this face only: the rest of its track is still measured
            return False
        if face.descriptor is not None:  # the finder or the store described this track already
            ok = self.distance(face.descriptor) < self.threshold
            if face.track is not None and face.track >= 0:
                self._tracks[face.track] = ok
            return ok
        if face.track is not None and face.track >= 0 and face.track in self._tracks:
            return self._tracks[face.track]
        from core.faces import detect

        desc = detect.descriptor(image, face.landmarks)
        self.computed += 1
        ok = self.distance(desc) < self.threshold
        if face.track is not None and face.track >= 0:
            self._tracks[face.track] = ok
        return ok


def _stored_references(project, side: str, limit: int) -> list[np.ndarray]:
    """The extraction's identity reference of the side (`alignments/_reference-SIDE.json`) and up
    to `limit` of the descriptors it stored for the side's kept faces."""
    from core.faces import alignments as store
    from core.system.atomic import read_json

    out: list[np.ndarray] = []
    try:
        data = read_json(project.alignments_dir / f"_reference-{side}.json")
        out += [np.asarray(d, np.float32).reshape(128) for d in data.get("descriptors", [])]
    except (OSError, ValueError, TypeError):
        pass
    stored: list[np.ndarray] = []
    for src in project.sources_of(side):
        try:
            a = store.load_for_source(project, src.id)
        except FacepairError:
            continue
        kept = a.status[a.descriptor_face] == 0 if len(a.descriptor_face) else np.zeros(0, bool)
        stored += list(a.descriptors[kept])
    if stored:
        picks = np.linspace(0, len(stored) - 1, min(limit, len(stored))).round().astype(int)
        out += [np.asarray(stored[i], np.float32) for i in picks]
    return out


def _crop_descriptors(project, side: str, limit: int) -> list[np.ndarray]:
    """Descriptors computed on up to `limit` of the side's face crops (those with an alignment
    record: the landmarks come from it); ConvertError when the side has no faces at all."""
    from core.faces import alignments as store
    from core.faces import detect
    from core.faces.align import crop_landmarks
    from core.faces.faceset import face_files
    from core.media.read import read_image

    files = face_files(project, side)
    if not files:
        raise ConvertError(
            f"--faces match needs side {side}'s faces ({project.label(side)}) to know who to swap, and "
            f"faces/{side} is empty: run `facepair extract {project.name}` or use --faces all")
    picks = [files[round(i)] for i in np.linspace(0, len(files) - 1, min(limit, len(files)))]
    stores: dict[str, object] = {}
    out: list[np.ndarray] = []
    for f in picks:
        parsed = store.parse_crop_name(f.name)
        if parsed is None:
            continue
        sid, frame, face = parsed
        if sid not in stores:
            try:
                stores[sid] = store.load_for_source(project, sid)
            except FacepairError:
                stores[sid] = None
        a = stores[sid]
        row = a.row(frame, face) if a is not None else None
        if row is None:
            continue
        try:
            crop = read_image(f)
        except FacepairError:
            continue
        out.append(detect.descriptor(crop, crop_landmarks(a.landmarks[row], a.matrix[row])))
    return out


def reference_descriptors(project, side: str, limit: int = REFERENCE_FACES) -> np.ndarray:
    """Who the side's person is: (K, 128) dlib descriptors. The extraction's identity reference
    (`alignments/_reference-SIDE.json`) and the descriptors it stored for the side's kept faces when
    there are any; else descriptors computed on up to `limit` of the side's crops."""
    out = _stored_references(project, side, limit)
    if out:
        return np.stack(out)
    out = _crop_descriptors(project, side, limit)
    if not out:
        raise ConvertError(f"--faces match could not describe side {side}'s person from faces/{side} "
                           f"(no usable crop with an alignment record): re-run `facepair extract "
                           f"{project.name}` or use --faces all")
    return np.stack(out).astype(np.float32)
