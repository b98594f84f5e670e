"""Frames in: reading images, videos and folders of images, and the pixel limit.

Every frame is an RGB uint8 array (H, W, 3). Bad input gets a `MediaError` whose message names
the file and says what is wrong: a missing path, a file that is not media, a corrupt image, a
video that cannot be opened or holds no decodable frame. What a source is (its size, rate,
audio) is `core.media.probe`'s; writing is `core.media.write`'s.

API
- `read_image(path) -> rgb` (EXIF orientation applied, grey/alpha/16-bit converted to RGB8).
- `iter_frames(path, start=0, every=1, stop=None, on_error=None) -> Iterator[Frame]`:
  `Frame(index, image, name)`; videos are decoded in order once, in a decoder thread that keeps at
  most `queue_size` frames ahead (memory stays bounded for any length). For a folder, `index` is
  the image's position in name order and `name` its file name; a corrupt image is skipped and
  reported to `on_error(index, name, message)`, or raises MediaError when no callback is given.
  `start`/`every`/`stop` select frames by index (`every` N: indices start, start+N, …);
  `skip` leaves out a set of indices (a resumed extraction's done frames).
- `source_kind(path)`, `image_size(path)`, `open_video(path)`: the checks `probe` shares.

Pixel limit: an image larger than `max_image_pixels()` (100 megapixels unless
$FACEPAIR_MAX_IMAGE_PIXELS says otherwise; 0 means no limit) is refused with a MediaError naming
the file and its size, read from the header before anything is decoded: a small file can claim
20000×20000 pixels (a "decompression bomb") and decoding it would take gigabytes. `probe`,
`read_image`, `iter_frames` and `check_image_pixels` all apply it. PIL's process-wide
`Image.MAX_IMAGE_PIXELS` is left as it is.
"""

from __future__ import annotations

import os
import queue
import struct
import threading
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import FacepairError
from core.media import types as mediatypes

LARGE_SIDE = 8192  # images larger than this on a side are downscaled for detection
MAX_PIXELS_ENV = "FACEPAIR_MAX_IMAGE_PIXELS"
MAX_PIXELS_DEFAULT = 100_000_000  # 100 megapixels: 300 MB as RGB, about 10000×10000


class MediaError(FacepairError):
    """A source cannot be read: missing, not media, corrupt, or a video that does not decode."""


@dataclass
class Frame:
    index: int
    image: np.ndarray
    name: str = ""


# ---- images ----------------------------------------------------------------------------------

def source_kind(path: Path) -> str:
    """video | image | folder; MediaError for a missing path or one that is not media."""
    if not path.exists():
        raise MediaError(f"{path}: no such file or folder")
    kind = mediatypes.classify(path)
    if kind is None:
        raise MediaError(
            f"{path}: not a video or image facepair reads (extension {path.suffix or '(none)'!r}); "
            f"videos: {', '.join(sorted(mediatypes.VIDEO_EXTS))}; images: {', '.join(sorted(mediatypes.IMAGE_EXTS))}"
        )
    return kind


def max_image_pixels() -> int | None:
    """The largest image (width × height) facepair decodes: $FACEPAIR_MAX_IMAGE_PIXELS, else 100
    megapixels; None (no limit) when the variable is 0."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not raw:
        return MAX_PIXELS_DEFAULT
    try:
        value = float(raw)
    except ValueError:
        raise MediaError(f"${MAX_PIXELS_ENV}={raw!r} is not a number of pixels "
                         f"(e.g. {MAX_PIXELS_DEFAULT}; 0 means no limit)") from None
    return None if value <= 0 else int(value)


def _check_pixels(path: Path, width: int, height: int) -> None:
    limit = max_image_pixels()
    if limit is not None and width * height > limit:
        raise MediaError(
            f"{path}: image is {width}×{height} pixels ({width * height / 1e6:,.0f} megapixels), over the "
            f"limit of {limit / 1e6:,.4g} megapixels. Shrink it, or raise the limit "
            f"with {MAX_PIXELS_ENV}=PIXELS (0: no limit) if you trust this file"
        )


def _header(path: Path) -> tuple[int, int, int] | None:
    """(width, height, EXIF orientation) from the file's header, decoding nothing; None when PIL
    does not know the format. PIL's plugins are called directly, as `Image.open` does, but without
    its process-wide decompression-bomb check (facepair applies its own limit)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    Image.init()
    try:
        with open(path, "rb") as fp:
            prefix = fp.read(16)
            for fmt in list(Image.ID):
                factory, accept = Image.OPEN[fmt]
                try:
                    result = not accept or accept(prefix)
                    if not result or isinstance(result, str):
                        continue
                    fp.seek(0)
                    im = factory(fp, str(path))
                except (SyntaxError, IndexError, TypeError, ValueError, EOFError, struct.error, OSError):
                    continue
                w, h = im.size
                return int(w), int(h), _orientation(im)
    except OSError:
        return None
    return None


def _orientation(im) -> int:
    """EXIF orientation (1–8) without decoding: PIL's PNG `getexif` would decode the whole image
    to look for an eXIf chunk after the pixels, so a PNG counts only one before them."""
    try:
        if im.format == "PNG" and "exif" not in im.info:
            return 1
        return int(im.getexif().get(0x0112, 1))
    except Exception:
        return 1


def check_image_pixels(path: str | os.PathLike) -> tuple[int, int] | None:
    """MediaError when the image's header says it is over `max_image_pixels()`; else its
    (width, height) as stored (None when the header is not one PIL reads). Decodes nothing."""
    path = Path(path)
    head = _header(path)
    if head is None:
        return None
    _check_pixels(path, head[0], head[1])
    return head[0], head[1]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8; MediaError when it is missing, not an image, corrupt, or over
    the pixel limit (checked from the header first)."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such image file")
    check_image_pixels(path)
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise MediaError(f"{path}: empty file, not an image")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)  # applies EXIF orientation, drops alpha, 8-bit
    except cv2.error as e:
        raise MediaError(f"{path}: cannot decode image ({e.msg if hasattr(e, 'msg') else e})") from None
    if img is None or img.size == 0:
        raise MediaError(f"{path}: corrupt or unsupported image (it could not be decoded)")
    _check_pixels(path, img.shape[1], img.shape[0])  # a format whose header PIL does not read
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as shown (EXIF orientation applied), from the header when PIL reads it
    (cheap), else by decoding; MediaError over the pixel limit."""
    head = _header(path)
    if head is None:
        img = read_image(path)
        return img.shape[1], img.shape[0]
    w, h, orientation = head
    _check_pixels(path, w, h)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


# ---- video ------------------------------------------------------------------------------------

def open_video(path: Path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise MediaError(f"{path}: cannot open it as a video (not a video file, truncated, or an unsupported codec)")
    return cap


# ---- reading frames --------------------------------------------------------------------------

_END = object()


def _video_frames(path: Path, start: int, every: int, stop: int | None, queue_size: int,
                  skip: Container[int] | None = None) -> Iterator[Frame]:
    import cv2

    cap = open_video(path)
    q: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
    halt = threading.Event()

    def put(item) -> bool:
        while not halt.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            index = 0
            while not halt.is_set() and (stop is None or index < stop):
                wanted = index >= start and (index - start) % every == 0 and not (skip and index in skip)
                if wanted:
                    ok, bgr = cap.read()
                    if not ok:
                        break
                    if not put(Frame(index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))):
                        return
                elif not cap.grab():  # skipped frames are demuxed and decoded, never converted
                    break
                index += 1
            put(_END)
        except BaseException as e:  # hand the error to the reader
            put(e)
        finally:
            cap.release()

    thread = threading.Thread(target=decode, name=f"decode:{path.name}", daemon=True)
    thread.start()
    got_any = False
    try:
        while True:
            item = q.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise MediaError(f"{path}: decoding failed: {item}")
            got_any = True
            yield item
        if not got_any and start == 0:
            raise MediaError(f"{path}: the video opens but no frame can be decoded (corrupt or unsupported codec)")
    finally:
        halt.set()
        thread.join(timeout=5)


def iter_frames(path: str | os.PathLike, start: int = 0, every: int = 1, stop: int | None = None,
                on_error: Callable[[int, str, str], None] | None = None, queue_size: int = 8,
                skip: Container[int] | None = None) -> Iterator[Frame]:
    """Frames of a video, an image or a folder of images, in order (see the module notes).
    `skip`: indices not to yield (not decoded for folders; only demuxed for videos)."""
    path = Path(path)
    every = max(1, int(every))
    start = max(0, int(start))
    kind = source_kind(path)
    if kind == "video":
        yield from _video_frames(path, start, every, stop, queue_size, skip)
        return
    files = [path] if kind == "image" else mediatypes.images_in(path)
    if kind == "folder" and not files:
        raise MediaError(f"{path}: folder holds no images")
    for index, f in enumerate(files):
        if index < start or (index - start) % every or (stop is not None and index >= stop) or (skip and index in skip):
            continue
        try:
            image = read_image(f)
        except MediaError as e:
            if on_error is None:
                raise
            on_error(index, f.name, str(e))
            continue
        yield Frame(index, image, f.name)
