"""dlib face detection, 68-point landmarks and the 128-d face descriptor.

dlib is imported lazily (on first use), and each model is loaded once per process: training and
`facepair --help` never pay for it. The model files come from the `face-recognition-models`
package, found by its folder (its `__init__` needs setuptools' pkg_resources, so it is not imported).

Detectors
- "hog" (default): dlib's frontal HOG detector, run on a *grayscale* copy of the frame rescaled by
  `detect_scale`: the detector's window is `HOG_WINDOW` (80 px), so a frame is shrunk when the
  smallest wanted face (`min_face`) is larger than that and enlarged when it is smaller. The
  rescaled side is capped at `MAX_DETECT_SIDE` pixels, so an image larger than 8k is downscaled for
  detection (faces smaller than `side / MAX_DETECT_SIDE * window` are then out of reach).
- "cnn": dlib's MMOD CNN detector (mmod_human_face_detector.dat), RGB, window `CNN_WINDOW`. Slower
  on a CPU (hundreds of ms a frame) but finds turned and dim faces HOG misses. Its boxes are
  tighter than HOG's; `Detection.predictor_box` maps them onto the HOG-like box that the 68-point
  predictor was trained with.
Boxes are always returned in the coordinates of the image passed in, whatever scale was used.

Landmarks: `landmarks(image, box)` runs dlib's 68-point predictor on the full-resolution image
(grayscale or RGB), returns (68, 2) float32 (x, y). dlib gives integer pixel positions.

Descriptor: `descriptor(rgb, landmarks) -> (128,) float32`, dlib's ResNet face descriptor (~145 ms
a face on a CPU: compute it only where needed). Two faces of the same person are usually closer
than `IDENTITY_THRESHOLD` (0.6, Euclidean).

`box_from_landmarks(landmarks)`: the HOG-style box the detector would draw around a face with these
landmarks (calibrated on dlib's own detections); trackers use it to re-run the predictor without a
detection.
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import FacepairError

DETECTORS = ("hog", "cnn")
HOG_WINDOW = 80
CNN_WINDOW = 70
MAX_DETECT_SIDE = 4096
IDENTITY_THRESHOLD = 0.6

PRELOAD_ENV = "FACEPAIR_DLIB_PRELOAD"  # set: importing this module loads the HOG, predictor and encoder

MODEL_FILES = {
    "predictor": "shape_predictor_68_face_landmarks.dat",
    "cnn": "mmod_human_face_detector.dat",
    "encoder": "dlib_face_recognition_resnet_model_v1.dat",
}


class DetectorError(FacepairError):
    """dlib or its model files are missing, or a detector name is unknown."""


# ---- model files and lazy loading ------------------------------------------------------------

def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError("the dlib model files are missing: pip install face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def model_path(name: str) -> Path:
    path = models_dir() / MODEL_FILES[name]
    if not path.is_file():
        raise DetectorError(f"dlib model file {path} is missing: reinstall face-recognition-models")
    return path


_lock = threading.Lock()
_models: dict[str, object] = {}


def _dlib():
    try:
        import dlib
    except ImportError as e:  # pragma: no cover - depends on the install
        raise DetectorError(f"dlib is not installed ({e}): pip install dlib-bin") from e
    return dlib


def _model(name: str):
    with _lock:
        if name not in _models:
            dlib = _dlib()
            if name == "hog":
                _models[name] = dlib.get_frontal_face_detector()
            elif name == "cnn":
                _models[name] = dlib.cnn_face_detection_model_v1(str(model_path("cnn")))
            elif name == "predictor":
                _models[name] = dlib.shape_predictor(str(model_path("predictor")))
            elif name == "encoder":
                _models[name] = dlib.face_recognition_model_v1(str(model_path("encoder")))
            else:
                raise DetectorError(f"unknown dlib model {name!r}")
        return _models[name]


def check_detector(name: str) -> str:
    name = (name or "hog").lower()
    if name not in DETECTORS:
        raise DetectorError(f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}")
    return name


def warm_up(detector: str = "hog", descriptor: bool = False) -> None:
    """Load the models a worker will need, before the first frame arrives."""
    _model(check_detector(detector))
    _model("predictor")
    if descriptor:
        _model("encoder")


# ---- detections ------------------------------------------------------------------------------

# The CNN's boxes are tighter and sit higher than the HOG boxes the predictor was trained on:
# predictor_box grows and shifts them (fitted on dlib's own detections of the same faces).
_CNN_TO_HOG = (0.0, 0.11, 1.07)  # (dx, dy) as a fraction of the CNN box side, then scale


@dataclass(frozen=True)
class Detection:
    """A face box in image pixels (left, top, right, bottom; inclusive-pixel dlib convention)."""

    left: float
    top: float
    right: float
    bottom: float
    score: float
    detector: str = "hog"

    @property
    def width(self) -> float:
        return self.right - self.left + 1

    @property
    def height(self) -> float:
        return self.bottom - self.top + 1

    @property
    def size(self) -> float:
        return max(self.width, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)

    def as_array(self) -> np.ndarray:
        return np.array([self.left, self.top, self.right, self.bottom], dtype=np.float32)

    def scaled(self, factor: float, dx: float = 0.0, dy: float = 0.0) -> Detection:
        """This box in another image: `(p + 0.5) / factor - 0.5`, then shifted by (dx, dy)."""
        def f(v: float, d: float) -> float:
            return (v + 0.5) / factor - 0.5 + d

        return Detection(f(self.left, dx), f(self.top, dy), f(self.right + 1, dx) - 1, f(self.bottom + 1, dy) - 1,
                         self.score, self.detector)

    def predictor_box(self) -> Detection:
        """The box to give the 68-point predictor (HOG-like, whatever found the face)."""
        if self.detector != "cnn":
            return self
        dx, dy, k = _CNN_TO_HOG
        side = self.size
        cx, cy = self.center
        cx, cy, half = cx + dx * side, cy + dy * side, side * k / 2
        return Detection(cx - half, cy - half, cx + half, cy + half, self.score, "hog")


def iou(a: Detection | np.ndarray, b: Detection | np.ndarray) -> float:
    a = a.as_array() if isinstance(a, Detection) else np.asarray(a, dtype=float)
    b = b.as_array() if isinstance(b, Detection) else np.asarray(b, dtype=float)
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return float(inter / area) if area > 0 else 0.0


def detect_scale(shape: tuple[int, ...], min_face: float, detector: str = "hog",
                 max_side: int = MAX_DETECT_SIDE) -> float:
    """The factor to rescale an image by so a face of `min_face` px fills the detector's window,
    capped so the rescaled image's longer side stays within `max_side`."""
    window = CNN_WINDOW if detector == "cnn" else HOG_WINDOW
    scale = window / max(1.0, float(min_face))
    long_side = max(shape[0], shape[1])
    return min(scale, max_side / max(1, long_side))


def to_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    if abs(scale - 1.0) < 1e-3:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def detect(image: np.ndarray, detector: str = "hog", min_face: float = 40, max_side: int = MAX_DETECT_SIDE,
           threshold: float = 0.0, scale: float | None = None) -> list[Detection]:
    """Faces in an RGB (or, for HOG, grayscale) uint8 image, most confident first.

    `min_face`: the smallest face (box side, px) wanted; the image is rescaled for it (see the
    module notes). `scale` overrides that factor. `threshold`: HOG score / CNN confidence floor.
    """
    detector = check_detector(detector)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"detect needs a uint8 grayscale or RGB image, got {image.dtype} {image.shape}")
    s = detect_scale(image.shape, min_face, detector, max_side) if scale is None else float(scale)
    if detector == "hog":
        small = np.ascontiguousarray(_resize(to_gray(image), s))
        rects, scores, _ = _model("hog").run(small, 0, float(threshold))
        found = [Detection(r.left(), r.top(), r.right(), r.bottom(), float(sc), "hog").scaled(s)
                 for r, sc in zip(rects, scores, strict=True)]
    else:
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        small = np.ascontiguousarray(_resize(rgb, s))
        found = []
        for d in _model("cnn")(small, 0):
            if d.confidence >= threshold:
                r = d.rect
                found.append(Detection(r.left(), r.top(), r.right(), r.bottom(), float(d.confidence), "cnn").scaled(s))
    found.sort(key=lambda d: -d.score)
    return found


def detect_in_region(image: np.ndarray, box: Detection | np.ndarray, detector: str = "hog",
                     margin: float = 0.6, target: float | None = None, threshold: float = 0.0) -> list[Detection]:
    """Faces near `box` only: the detector runs on a window around it (box grown by `margin` of its
    side on each side), rescaled so the face is about `target` px (1.3 × the detector window by
    default). Cheap: trackers use it to re-find a face in the next frame."""
    b = box.as_array() if isinstance(box, Detection) else np.asarray(box, dtype=float)
    side = max(b[2] - b[0] + 1, b[3] - b[1] + 1)
    h, w = image.shape[:2]
    x0 = int(max(0, math.floor(b[0] - margin * side)))
    y0 = int(max(0, math.floor(b[1] - margin * side)))
    x1 = int(min(w, math.ceil(b[2] + 1 + margin * side)))
    y1 = int(min(h, math.ceil(b[3] + 1 + margin * side)))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return []
    window = CNN_WINDOW if check_detector(detector) == "cnn" else HOG_WINDOW
    target = target or 1.3 * window
    scale = min(target / side, MAX_DETECT_SIDE / max(x1 - x0, y1 - y0))
    region = image[y0:y1, x0:x1]
    if detector == "hog":
        region = to_gray(region)
    found = detect(np.ascontiguousarray(region), detector, scale=scale, threshold=threshold)
    return [Detection(d.left + x0, d.top + y0, d.right + x0, d.bottom + y0, d.score, d.detector) for d in found]


# ---- landmarks and descriptors ---------------------------------------------------------------

def _rect(box: Detection):
    dlib = _dlib()
    return dlib.rectangle(int(round(box.left)), int(round(box.top)), int(round(box.right)), int(round(box.bottom)))


def landmarks(image: np.ndarray, box: Detection) -> np.ndarray:
    """dlib's 68 landmarks (68, 2) float32 for the face in `box` (use the full-resolution image)."""
    shape = _model("predictor")(image, _rect(box.predictor_box()))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


# Calibration of box_from_landmarks: with the unit similarity u = face_matrix(landmarks), the
# HOG box centre sits at mean-face point _BOX_CENTER and its side is _BOX_SIDE mean-face units.
_BOX_CENTER = (0.50, 0.47)
_BOX_SIDE = 1.28


def box_from_landmarks(points: np.ndarray, score: float = float("nan")) -> Detection:
    """The HOG-style box for a face with these 68 landmarks (axis-aligned; see module notes)."""
    from core.faces.align import face_matrix, invert, matrix_scale, transform_points

    m = face_matrix(points)
    cx, cy = transform_points(np.array(_BOX_CENTER), invert(m))
    half = _BOX_SIDE / matrix_scale(m) / 2
    return Detection(cx - half, cy - half, cx + half - 1, cy + half - 1, score, "hog")


_SCORE_UNIT = 80.0  # mean-face unit in pixels of the re-scoring crop: the face box is ~100 px
_SCORE_COVERAGE = 1.8


def face_score(image: np.ndarray, points: np.ndarray, floor: float = -1.0) -> float:
    """How face-like the region under these landmarks is: the HOG detector's score on the face
    warped upright and rescaled to the detector's best size (`floor` when nothing is found).

    Rotation and scale are taken out, so a real face scores well (typically > 0.5) at any roll
    angle, while a face-shaped false positive or a tracked face that drifted off scores low.
    """
    import cv2

    from core.faces.align import crop_matrix, warp_to_crop

    size = int(round(_SCORE_UNIT * _SCORE_COVERAGE))
    m = crop_matrix(points, size, coverage=_SCORE_COVERAGE, center=_BOX_CENTER)
    gray = to_gray(image)
    crop = np.ascontiguousarray(warp_to_crop(gray, m, size) if gray.ndim == 2 else cv2.cvtColor(
        warp_to_crop(image, m, size), cv2.COLOR_RGB2GRAY))
    rects, scores, _ = _model("hog").run(crop, 0, float(floor))
    half = _BOX_SIDE * _SCORE_UNIT / 2
    c = ((size - 1) / 2, (size - 1) / 2)  # the crop is centred on the box centre
    expected = np.array([c[0] - half, c[1] - half, c[0] + half - 1, c[1] + half - 1])
    best = floor
    for r, s in zip(rects, scores, strict=True):
        if iou(np.array([r.left(), r.top(), r.right(), r.bottom()], float), expected) > 0.4:
            best = max(best, float(s))
    return best


def descriptor(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """dlib's 128-d face descriptor (float32) of the face with these 68 landmarks in an RGB image."""
    dlib = _dlib()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    pts = np.asarray(points, dtype=np.float64)
    box = box_from_landmarks(pts)
    shape = dlib.full_object_detection(_rect(box), dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in pts]))
    return np.array(_model("encoder").compute_face_descriptor(np.ascontiguousarray(image), shape), dtype=np.float32)


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


if os.environ.get(PRELOAD_ENV) == "1" and __name__ != "__main__":
    # Set by core.extract.finder.FacePool for its fork server only: workers forked from it start with
    # the models in memory instead of loading them (seconds each) one by one.
    try:
        warm_up("hog", descriptor=True)
    except DetectorError:
        pass
