"""Pictures of one face for a viewer: its crop with the 68 landmarks drawn, and the source frame it
came from with its box and landmarks. Drawn here, so the faces screen only shows them.

The landmarks come from the face's alignments store (`landmarks`, frame pixels; in crop pixels
through its `matrix`); a `FaceViews` keeps the stores it loaded and loads one again only when
its parts or curation changed (`core.faces.scores.store_signature`).

API: `FaceViews(project)`: `crop(side, name, px=256) -> RGB`, `frame(name, max_side=960) -> SourceFrame`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import FacepairError
from core.faces import align, trash
from core.faces import alignments as store
from core.faces.scores import store_signature

LANDMARK_RGB = (80, 255, 120)
BOX_RGB = (255, 200, 40)


class FaceViewError(FacepairError):
    """A face that cannot be shown: no crop, no store, no such frame."""


@dataclass
class SourceFrame:
    """A face's source frame, drawn on: `image` RGB (scaled to fit `max_side`), which source and frame."""

    image: np.ndarray
    path: str
    frame: int
    box: tuple[int, int, int, int]  # in the source frame's pixels
    scale: float  # image pixels per source pixel


class FaceViews:
    def __init__(self, project):
        self.project = project
        self._stores: dict[str, tuple[str, store.Alignments]] = {}

    def _face(self, name: str) -> tuple[store.Alignments, int]:
        parsed = store.parse_crop_name(name)
        if parsed is None:
            raise FaceViewError(f"{name!r} is not a face name (SOURCEID_FRAME_FACE.png)")
        sid, frame, face = parsed
        path = store.store_path(self.project, sid)
        if not (path / store.META).is_file():
            raise FaceViewError(f"source {sid} has no alignments store (re-extract it)")
        sig = store_signature(path)
        cached = self._stores.get(sid)
        if cached is None or cached[0] != sig:
            cached = (sig, store.load(path))
            self._stores[sid] = cached
        row = cached[1].row(frame, face)
        if row is None:
            raise FaceViewError(f"{name}: its alignments store has no face {face} in frame {frame} (re-extracted since?)")
        return cached[1], row

    def crop(self, side: str, name: str, px: int = 256) -> np.ndarray:
        """The crop file (faces/SIDE or the trash), `px` square, its landmarks drawn as dots."""
        import cv2

        from core.media.read import read_image

        path = trash.crop_file(self.project, side, name)
        if path is None:
            raise FaceViewError(f"{name}: its crop is in neither faces/{side} nor the trash")
        image = read_image(path)
        scale = px / image.shape[1]
        image = cv2.resize(image, (px, px), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        try:
            a, row = self._face(name)
        except FaceViewError:
            return image  # the crop without its landmarks
        points = align.crop_landmarks(a.landmarks[row], a.matrix[row]) * scale
        return draw_points(image, points, max(1, px // 128))

    def frame(self, name: str, max_side: int = 960) -> SourceFrame:
        """The face's source frame with its detector box and landmarks (reads frames up to it:
        a frame deep in a long video takes a moment, so call this off the UI thread)."""
        import cv2

        from core.media import read as media

        a, row = self._face(name)
        sid, frame, _ = store.parse_crop_name(name)
        src = next((s for s in self.project.sources if s.id == sid), None)
        if src is None:
            raise FaceViewError(f"source {sid} is no longer a source of {self.project.name!r}")
        fr = next(iter(media.iter_frames(src.path, start=frame, stop=frame + 1)), None)
        if fr is None:
            raise FaceViewError(f"{src.path} has no frame {frame} now (changed since it was extracted?)")
        image = fr.image
        scale = min(1.0, max_side / max(image.shape[:2]))
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        image = np.ascontiguousarray(image)
        box = tuple(int(round(v)) for v in a.box[row])
        thick = max(1, round(max(image.shape[:2]) / 320))
        p0 = (int(box[0] * scale), int(box[1] * scale))
        p1 = (int(box[2] * scale), int(box[3] * scale))
        cv2.rectangle(image, p0, p1, BOX_RGB, thick)
        image = draw_points(image, a.landmarks[row] * scale, thick)
        return SourceFrame(image=image, path=src.path, frame=frame, box=box, scale=scale)


def draw_points(image: np.ndarray, points: np.ndarray, radius: int = 1) -> np.ndarray:
    """A copy of `image` with a dot at each finite point."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    for x, y in np.asarray(points, np.float64):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(out, (int(round(x)), int(round(y))), radius, LANDMARK_RGB, -1, lineType=cv2.LINE_AA)
    return out
